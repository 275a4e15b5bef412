"""The Python API: check and compile a spec given as a path or as text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.diagnostics import Diagnostic, Diagnostics
from cnnspec.elaborate import Elaborator, Limits, deep_recursion, select_network
from cnnspec.ir import Graph
from cnnspec.loader import Program, load
from cnnspec.passes import Analysis, analyze
from cnnspec.report import Report, build_report
from cnnspec.source import SourceMap

if TYPE_CHECKING:
    import torch.fx

#: Networks above this many parameters are refused (about 400 GB of fp32 weights).
MAX_PARAMS = 100_000_000_000


@dataclass
class Checked:
    """Everything the front end and the passes produce for one network."""

    program: Program
    graph: Graph
    analysis: Analysis
    warnings: list[Diagnostic]


def analyse(
    spec: str | Path,
    network: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    limits: Limits | None = None,
    **params: Any,
) -> Checked:
    """Load, elaborate and run the passes; raise SpecError with every diagnostic."""
    sources = SourceMap()
    with deep_recursion():
        program = load(spec, sources)
        diags = Diagnostics(sources)
        name = select_network(program, network, diags)
        diags.raise_if_errors()
        assert name is not None
        elab = Elaborator(program, diags, limits)
        graph = elab.network(name, params, input_shape)
        diags.raise_if_errors()
        assert graph is not None
        analysis = analyze(graph)
        if analysis.trainable_params > MAX_PARAMS:
            diags.error(
                "E605",
                f"the network has {analysis.trainable_params:,} parameters, above the limit of {MAX_PARAMS:,}",
                program.networks[name].span,
            )
            diags.raise_if_errors()
    return Checked(program, graph, analysis, diags.warnings)


def check(spec: str | Path, network: str | None = None, *, input_shape: tuple[int, ...] | None = None, **params: Any) -> Report:
    """Check a spec statically and return its report (the data of `cnnspec check --json`).

    spec is a path to a .cnn file or the spec text; params override the
    network's parameters (as --set does). Raises cnnspec.SpecError.
    """
    c = analyse(spec, network, input_shape=input_shape, **params)
    return build_report(c.graph, c.analysis, c.warnings)


def compile(
    spec: str | Path, network: str | None = None, *, input_shape: tuple[int, ...] | None = None, **params: Any
) -> torch.fx.GraphModule:
    """Check a spec and build its trainable torch.fx.GraphModule. Raises cnnspec.SpecError."""
    from cnnspec.backends.fx import to_graph_module

    c = analyse(spec, network, input_shape=input_shape, **params)
    return to_graph_module(c.graph)
