"""Static passes over the IR graph: small pure functions of the graph."""

from cnnspec.analysis.analysis import Analysis, analyze

__all__ = ["Analysis", "analyze"]
