"""Backends: consumers of the IR graph and the pass results (torch.fx, Python source, export)."""
