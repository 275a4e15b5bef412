"""The size limits of one spec file (docs/language.md, "Limits").

They keep the worst input within a few seconds and a few hundred MB, far above
any written spec. The parser, the AST builder, error recovery and the loader
each read the ones they enforce.
"""

from __future__ import annotations

#: Deepest nesting of brackets and of the parse tree (expressions, statements)
#: the parser accepts. Real specs stay below 20; the limit keeps the recursive
#: tree builder and evaluator far from Python's recursion limit on any input.
MAX_NESTING = 200
#: The size limits of one spec file (docs/language.md, "Limits"). The stock specs are a few KB,
#: a few hundred lines and under 2,000 tokens; the limits are far above any written spec, and
#: low enough that the worst file within them is checked in a few seconds and under 500 MB
#: (parsing costs about 20-60 µs a token, each layer checked about 100 µs more).
#: Largest spec file: bytes as read (the loader), characters for text given inline.
MAX_SOURCE = 1024 * 1024
#: Most lines in one file.
MAX_LINES = 10_000
#: Most tokens (names, numbers, strings, symbols, line ends) in one file: what parsing time
#: grows with, whatever the layout.
MAX_TOKENS = 30_000
#: Longest name, longest string literal (in characters) and most items in one list literal.
MAX_NAME = 256
MAX_STRING = 4096
MAX_LIST_ITEMS = 10_000
#: Syntax errors reported per file before giving up, and errors met in all (most of them
#: repeats of a reported one, later on its line) before giving up.
MAX_SYNTAX_ERRORS = 10
MAX_ERROR_EVENTS = 1000
