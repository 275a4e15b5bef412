"""The torch.fx backend: an fx.Graph built directly from the IR, then a GraphModule.

Each layer becomes a call_module whose target is the spec's module path, so
the GraphModule's hierarchy and state_dict keys follow the spec's names.
Flatten and joins become call_function nodes. Every fx node carries its
spec span in node.meta["cnnspec_span"].
"""

from __future__ import annotations

import importlib
import keyword
import operator
from typing import TYPE_CHECKING, Any

from cnnspec import init as inits
from cnnspec.ir import Graph, Node
from cnnspec.layers.registry import Attrs, lookup

if TYPE_CHECKING:
    import torch.fx
    from torch import nn

#: Producers whose output autograd does not need, so an activation may overwrite it.
_INPLACE_SAFE_PRODUCERS = frozenset({"conv", "batchnorm", "groupnorm", "linear", "add", "concat"})


def _function(dotted: str) -> Any:
    mod, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def _may_run_inplace(graph: Graph, node: Node) -> bool:
    src = graph.nodes[node.inputs[0]]
    return src.kind in _INPLACE_SAFE_PRODUCERS and len(graph.users(src.id)) == 1


def build_modules(graph: Graph) -> dict[str, nn.Module]:
    """A torch module for every layer that has one, keyed by module path, initialised.

    A module whose every parameter an `init` rule will overwrite (and that has
    no buffers) is allocated without torch's default initialisation, which
    would only be thrown away: drawing ResNet-152's weights twice costs more
    than building the rest of it.
    """
    import torch

    rules: dict[str, list[Any]] = {}
    for rule in graph.init_rules:
        rules.setdefault(rule.kind, []).append(rule)
    modules: dict[str, nn.Module] = {}
    for node in graph.layers():
        if not node.has_module:
            continue
        kind = lookup(node.kind)
        assert kind is not None and kind.module is not None
        inplace = kind.inplace and _may_run_inplace(graph, node)
        attrs, x = Attrs(node.attrs), node.in_shapes[0]
        node_rules = rules.get(node.kind, ())
        targets = {r.target for r in node_rules}
        module = None
        if targets:
            with torch.device("meta"):
                shell = kind.module(attrs, x, inplace)
            names = {n for n, _ in shell.named_parameters()}
            if names and names <= targets and next(shell.buffers(), None) is None:
                module = shell.to_empty(device="cpu")
        if module is None:
            module = kind.module(attrs, x, inplace)
        for rule in node_rules:
            tensor = getattr(module, rule.target, None)
            if tensor is not None:
                inits.apply(tensor, rule.scheme, rule.args)
        modules[node.path] = module
    return modules


def fx_name(path: str) -> str:
    """A valid Python identifier for an fx node name derived from a module path."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in path)
    if not name or name[0].isdigit() or keyword.iskeyword(name):
        name = "_" + name
    return name


def to_fx_graph(graph: Graph, with_aux: bool = True) -> torch.fx.Graph:
    """The fx.Graph of a network: placeholder, call_module per layer, call_function per join.

    With auxiliary outputs, the graph returns (main, *aux) when with_aux is
    true; otherwise it holds only what the main output needs.
    """
    import networkx as nx
    import torch
    import torch.fx

    outputs = [graph.output] + ([a.node for a in graph.aux] if with_aux else [])
    needed = set(outputs)
    for out_id in outputs:
        needed |= nx.ancestors(graph.g, out_id)
    fxg = torch.fx.Graph()
    values: dict[int, torch.fx.Node] = {}
    values[0] = fxg.placeholder("x")
    values[0].meta["cnnspec_span"] = graph.input.span
    for node in graph.layers():
        if node.id not in needed:
            continue
        args = [values[i] for i in node.inputs]
        kind = lookup(node.kind)
        assert kind is not None
        if node.has_module:
            out = fxg.call_module(node.path, (args[0],))
        elif node.kind == "concat":
            out = fxg.call_function(torch.cat, (args, 1))
        elif kind.arity == "many":
            fn = _function(kind.function or "")
            out = args[0]
            for other in args[1:]:
                out = fxg.call_function(fn, (out, other))
                out.meta["cnnspec_span"] = node.span
        else:
            fn = _function(kind.function or "")
            out = fxg.call_function(fn, (args[0], *kind.function_args(Attrs(node.attrs))))
        out.meta["cnnspec_span"] = node.span
        out.meta["cnnspec_path"] = node.path
        values[node.id] = out
    if len(outputs) == 1:
        fxg.output(values[graph.output])
    else:
        fxg.output(tuple(values[i] for i in outputs))
    fxg.lint()
    return fxg


def to_graph_module(graph: Graph) -> torch.fx.GraphModule:
    """A trainable GraphModule whose module hierarchy follows the spec's names.

    A network with auxiliary outputs gives an AuxOutputsGraphModule: it
    returns (main, *aux) in training mode and only the main output in eval
    mode, where the auxiliary heads are not computed at all.
    """
    import torch.fx

    modules = build_modules(graph)
    name = fx_name(graph.network)
    if not graph.aux:
        return torch.fx.GraphModule(modules, to_fx_graph(graph), class_name=name)
    from cnnspec.nn import AuxOutputsGraphModule

    return AuxOutputsGraphModule(
        modules,
        to_fx_graph(graph, with_aux=True),
        to_fx_graph(graph, with_aux=False),
        class_name=name,
        aux_names=[a.name for a in graph.aux],
        aux_weights=[a.weight for a in graph.aux],
    )


# operator is imported so that _function("operator.add") resolves without a hidden import.
_ = operator
