"""Static passes over the IR graph: small pure functions of the graph."""

from cnnspec.passes.analysis import Analysis, analyze

__all__ = ["Analysis", "analyze"]
