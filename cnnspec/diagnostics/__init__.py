"""Diagnostics: what every stage reports about a spec, its codes, and how it is rendered."""

from cnnspec.diagnostics.core import Diagnostic, Diagnostics, Frame, Note, SpecError, render, render_all

__all__ = ["Diagnostic", "Diagnostics", "Frame", "Note", "SpecError", "render", "render_all"]
