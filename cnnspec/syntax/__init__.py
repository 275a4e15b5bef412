"""Syntax: source files, the Lark parser, the AST with spans, and the loader that follows imports."""
