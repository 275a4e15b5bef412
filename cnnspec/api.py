"""The Python API: check and compile a spec given as a path or as text."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnspec.analysis import Analysis, analyze
from cnnspec.diagnostics import Diagnostic, Diagnostics
from cnnspec.diagnostics.codes import E603, E605, E609, W006
from cnnspec.ir import Graph
from cnnspec.lint.static import static_warnings
from cnnspec.semantics.elaborate import Elaborator, Limits
from cnnspec.semantics.select import select_network
from cnnspec.syntax.cache import ParsedOnDisk
from cnnspec.syntax.loader import Program, load
from cnnspec.syntax.source import SourceMap
from cnnspec.views.format import nbytes

if TYPE_CHECKING:
    import torch.fx

    from cnnspec.views.report import Report

#: Networks above this many parameters are refused (about 400 GB of fp32 weights).
MAX_PARAMS = 100_000_000_000


@dataclass
class Checked:
    """Everything the front end and the passes produce for one network."""

    program: Program
    graph: Graph
    analysis: Analysis
    warnings: list[Diagnostic]


def analyze_network(program: Program, name: str, graph: Graph, diags: Diagnostics) -> Analysis:
    """The passes over an elaborated network, E605 when its parameters pass MAX_PARAMS (no warning
    renaming then), else the warnings' node ids turned into module paths. Shared with the language server."""
    analysis = analyze(graph)
    if analysis.trainable_params > MAX_PARAMS:
        diags.error(
            E605,
            f"the network has {analysis.trainable_params:,} parameters, above the limit of {MAX_PARAMS:,}",
            program.networks[name].name_span,
            help=["check the layer widths and repetition counts"],
        )
    else:
        _rename_warnings(graph, diags)
    return analysis


def analyse(
    spec: str | Path,
    network: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    limits: Limits | None = None,
    path: Sequence[str | os.PathLike[str]] | None = None,
    **params: Any,
) -> Checked:
    """Load, elaborate and run the passes; raise SpecError with every diagnostic. path: the
    directories imports are looked for in after the importing file's own (as --path)."""
    sources = SourceMap()
    diags = Diagnostics(sources)
    try:
        program = load(spec, sources, path, parsed=ParsedOnDisk.from_environment())
        name = select_network(program, network, diags)
        static_warnings(program, diags)
        diags.raise_if_errors()
        assert name is not None
        graph = Elaborator(program, diags, limits).network(name, params, input_shape)
        diags.raise_if_errors()
        assert graph is not None
        analysis = analyze_network(program, name, graph, diags)
        diags.raise_if_errors()
    except RecursionError:
        # The limits keep nesting far below the recursion limit; this is the last line of defence.
        diags.error(E603, "the spec is nested too deeply to check", None, help=["flatten the deepest nesting"])
        diags.raise_if_errors()
    handler = _warning_handler.get()
    if handler is not None and diags.warnings:
        handler(diags.warnings, sources)
    return Checked(program, graph, analysis, diags.warnings)


def available_memory() -> int:
    """Bytes of memory available now: MemAvailable, or free pages where /proc is missing.

    CNNSPEC_AVAILABLE_MEMORY (bytes) overrides it, for tests and for machines
    whose limit is a cgroup's rather than the kernel's.
    """
    override = os.environ.get("CNNSPEC_AVAILABLE_MEMORY")
    if override and override.isdigit():
        return int(override)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2**62  # unknown: do not refuse


def memory_needed(checked: Checked, batch: int = 0) -> int:
    """Bytes that building the module needs, from the static check.

    fp32 parameters and buffers, twice (torch's initialisation draws into
    temporaries), plus the activations of a forward pass at batch when the
    output format runs one (.pt2 and .onnx trace with a batch of 2).
    """
    weights = 4 * (checked.analysis.trainable_params + checked.analysis.buffers)
    return 2 * weights + (checked.analysis.activation_bytes(batch) if batch else 0)


def ensure_fits(checked: Checked, batch: int = 0) -> None:
    """Raise SpecError E609 when compiling the network would not fit in the memory available."""
    need, have = memory_needed(checked, batch), available_memory()
    if need <= have:
        return
    sources = SourceMap()
    diags = Diagnostics(sources)
    item = checked.program.networks[checked.graph.network]
    diags.error(
        E609,
        f"compiling `{checked.graph.network}` needs about {nbytes(need)} "
        f"({checked.analysis.trainable_params:,} parameters), but only {nbytes(have)} is available",
        item.name_span,
        help=["check the widths and repetition counts, or pass --insist to compile anyway"],
    )
    sources.texts.update(checked.program.sources.texts)
    diags.raise_if_errors()


#: Called with the warnings of every successful analyse (the command line prints them). A context
#: variable: each thread (and asyncio task) has its own handler, so library calls in other threads
#: never print through the command line's.
_warning_handler: ContextVar[Callable[[list[Diagnostic], SourceMap], None] | None] = ContextVar(
    "cnnspec_warning_handler", default=None
)


def set_warning_handler(handler: Callable[[list[Diagnostic], SourceMap], None] | None) -> None:
    """Have handler(warnings, sources) called whenever analyse succeeds with warnings, in this
    thread (or context)."""
    _warning_handler.set(handler)


def _rename_warnings(graph: Graph, diags: Diagnostics) -> None:
    """W006 for each module name that torch cannot take as it is (see backends.fx.safe_paths)."""
    from cnnspec.backends.names import renamed_modules

    for node, old, new in renamed_modules(graph):
        diags.warning(
            W006,
            f"the module name `{old}` cannot be a torch attribute; it is compiled as `{new}`",
            node.span,
            help=["rename it in the spec to keep the state_dict keys as written"],
        )


def check(
    spec: str | Path,
    network: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    path: Sequence[str | os.PathLike[str]] | None = None,
    **params: Any,
) -> Report:
    """Check a spec statically and return its report (the data of `cnnspec check --json`).

    spec is a path to a .cnn file or the spec text; params override the
    network's parameters (as --set does); path lists directories to look for
    imports in after the importing file's own (as --path; then CNNSPEC_PATH,
    then the stock specs). Raises cnnspec.SpecError.
    """
    # Imported here: the report is a pydantic model, and the command line's table needs neither.
    from cnnspec.views.report import build_report

    c = analyse(spec, network, input_shape=input_shape, path=path, **params)
    return build_report(c.graph, c.analysis, c.warnings)


def compile(
    spec: str | Path,
    network: str | None = None,
    *,
    input_shape: tuple[int, ...] | None = None,
    path: Sequence[str | os.PathLike[str]] | None = None,
    weights: str | os.PathLike[str] | None = None,
    **params: Any,
) -> torch.fx.GraphModule:
    """Check a spec and build its trainable torch.fx.GraphModule; path as for check. Raises
    cnnspec.SpecError.

    weights: a run directory of `cnnspec train` (its model.safetensors), a
    .safetensors file or a torch.save'd state_dict, loaded into the module after
    checking it against the spec (raises cnnspec.backends.weights.WeightsError
    naming the keys that do not fit; warns where the run trained another spec
    text or other parameters but its weights fit).
    """
    from cnnspec.backends.fx import to_graph_module

    c = analyse(spec, network, input_shape=input_shape, path=path, **params)
    gm = to_graph_module(c.graph)
    if weights is not None:
        import warnings

        for message in load_weights(gm, c, spec, weights, params).warnings:
            warnings.warn(message, UserWarning, stacklevel=2)
    return gm


def load_weights(
    gm: torch.nn.Module, checked: Checked, spec: str | Path, weights: str | os.PathLike[str], params: dict[str, Any]
) -> Any:
    """Load weights into gm, compiled from spec with params, checked against it (see compile); returns
    cnnspec.backends.weights.Loaded with the warnings to show."""
    from cnnspec.backends import weights as w
    from cnnspec.syntax.loader import is_path

    if is_path(spec):
        try:
            text: str | None = Path(spec).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        name = os.fspath(spec)
    else:
        text, name = str(spec), "the spec text"
    compiled = w.Compiled(name, text, checked.graph.network, {k: w.param_text(v) for k, v in params.items()})
    return w.load(gm, weights, compiled)
