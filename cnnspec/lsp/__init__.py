"""`cnnspec lsp`: a language server for .cnn specs.

server.py wires pygls to the pure parts: documents.py (the open documents' text and positions),
check.py (one document checked into diagnostics and the data the features read), and one module
per feature (diagnostics, hover, navigation, completion, symbols), each a function of a check.
Nothing here imports pygls but server.py.
"""
