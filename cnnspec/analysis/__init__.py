"""Static passes over the IR graph: small pure functions of the graph, listed in PASSES."""

from cnnspec.analysis.analysis import PASSES, Analysis, analyze

__all__ = ["PASSES", "Analysis", "analyze"]
