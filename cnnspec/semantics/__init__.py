"""Semantics: values, argument binding, scopes and naming; elaboration of the AST into the IR."""
