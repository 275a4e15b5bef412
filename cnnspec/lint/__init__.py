"""Lint: static warnings found on the AST alone (unused blocks, parameters and lets)."""
