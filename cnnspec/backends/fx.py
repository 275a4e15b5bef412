"""The torch.fx backend: an fx.Graph built directly from the IR, then a GraphModule.

Each layer becomes a call_module whose target is the spec's module path, so
the GraphModule's hierarchy and state_dict keys follow the spec's names, in
the spec's order. Flatten and joins become call_function nodes named after
their layer's path. Every fx node carries its spec span in
node.meta["cnnspec_span"], and its layer's path in node.meta["cnnspec_path"].

A scope whose submodules are numbered 0..n-1 (a stage of repeated blocks, a
`downsample` projection) is an nn.Sequential, as torchvision builds it, so
`model.layer3[4].conv2`, `len(model.layer3)` and `for block in model.layer3`
work; other scopes are plain nn.Modules. The graph still calls every layer by
its path, never a Sequential's own forward.
"""

from __future__ import annotations

import importlib
import operator
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from cnnspec.analysis.memory import keeps_output
from cnnspec.backends.names import TORCH_ATTRS, fx_name, module_paths, renamed_modules, safe_name, safe_paths
from cnnspec.ir import Graph, Node
from cnnspec.layers import init as inits
from cnnspec.layers.kind import Attrs
from cnnspec.layers.registry import lookup

if TYPE_CHECKING:
    import torch.fx
    from torch import nn

#: The naming functions, importable from here as before they moved to cnnspec.backends.names.
__all__ = [
    "TORCH_ATTRS", "broadcasts", "build_modules", "fx_name", "module_paths", "module_tree", "renamed_modules",
    "safe_name", "safe_paths", "sequential_scopes", "to_fx_graph", "to_graph_module",
]  # fmt: skip


def _function(dotted: str) -> Any:
    mod, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(mod), name)


def _node_name(name: str) -> str:
    """name, unless it is `self`: fx keeps its node names off keywords and builtins, but a value named
    `self` in the generated forward would rebind the module itself (a layer labelled `self`)."""
    return name + "_" if name.lower() == "self" else name


def _may_run_inplace(graph: Graph, node: Node) -> bool:
    """Whether node may overwrite its first input: autograd keeps nothing of it (the producer's
    saves rule in the layer table), it is the producer's own storage (not the network's input nor
    a view of another value), and node is its only reader (of it once: `add { x; x }` must not
    overwrite the x it then adds)."""
    src = graph.nodes[node.inputs[0]]
    kind = lookup(src.kind)
    return (
        kind is not None
        and kind.arity != "none"  # a learned tensor (param) is never overwritten
        and not kind.view
        and len(graph.users(src.id)) == 1
        and node.inputs.count(src.id) == 1
        and not keeps_output(src)
    )


def broadcasts(node: Node) -> bool:
    """Whether node broadcasts its operands against the batch (add, mul: elementwise joins, not concat)."""
    kind = lookup(node.kind)
    return kind is not None and kind.is_join and not kind.takes_list


def build_modules(graph: Graph) -> dict[str, nn.Module]:
    """A torch module for every layer that has one, keyed by module path, initialised.

    A module whose every parameter an `init` rule will overwrite (and that has
    no buffers) is allocated without torch's default initialisation, which
    would only be thrown away: drawing ResNet-152's weights twice costs more
    than building the rest of it. Modules are built on torch's default device
    (`with torch.device("meta"):` builds the structure without memory).
    """
    import torch

    device = torch.empty(0).device  # the default device (torch.get_default_device() needs torch 2.3)
    paths = module_paths(graph)
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
        node_rules = [r for r in rules.get(node.kind, ()) if r.selects(node)]
        if kind.arity == "none":
            # A learned tensor: the rules' `weight` is the tensor itself.
            tensor = kind.module(attrs, x, False)
            with torch.no_grad():
                for rule in node_rules:
                    if rule.target == "weight":
                        inits.apply(tensor, rule.scheme, rule.args)
            modules[paths[node.path]] = tensor
            continue
        targets = {r.target for r in node_rules}
        module = None
        if targets:
            with torch.device("meta"):
                shell = kind.module(attrs, x, inplace)
            names = {n for n, _ in shell.named_parameters()}
            if names and names <= targets and next(shell.buffers(), None) is None:
                module = shell.to_empty(device=device)
        if module is None:
            module = kind.module(attrs, x, inplace)
        for rule in node_rules:
            tensor = getattr(module, rule.target, None)
            if tensor is not None:
                inits.apply(tensor, rule.scheme, rule.args)
        modules[paths[node.path]] = module
    return modules


def module_tree(modules: dict[str, nn.Module]) -> nn.Module:
    """A module holding each of modules at its path, every container registered in the order first needed.

    A tensor among them (a `param`) is registered on its parent as a parameter
    (an nn.Parameter) or a buffer, so its state_dict key is its path itself.

    GraphModule(module, graph) copies the modules the graph calls in the
    graph's order, so its named_modules() and state_dict() follow the spec's
    order (torchvision's definition order: conv1, bn1, ..., layer4, fc), where
    GraphModule(dict, graph) would assign them sorted by nesting depth (fc and
    avgpool before layer1.0.conv1).
    """
    import torch
    from torch import nn

    root = nn.Module()
    for path, module in modules.items():
        *parents, leaf = path.split(".")
        parent = root
        for name in parents:
            if name not in parent._modules:
                parent.add_module(name, nn.Module())
            child = parent._modules[name]
            assert child is not None
            parent = child
        if isinstance(module, nn.Parameter):
            parent.register_parameter(leaf, module)
        elif isinstance(module, torch.Tensor):
            parent.register_buffer(leaf, module)
        else:
            parent.add_module(leaf, module)
    return root


def _numbered(children: list[str]) -> bool:
    return bool(children) and children == [str(i) for i in range(len(children))]


def sequential_scopes(root: nn.Module) -> nn.Module:
    """root with every scope below it whose children are numbered 0..n-1 made an nn.Sequential, in place.

    Only plain containers (exactly nn.Module, holding no tensors of their own)
    are replaced; a layer's own module is never touched. The Sequential holds
    the same child objects under the same names in the same place of its
    parent, so the state_dict keys and their order do not change.
    """
    from torch import nn

    def visit(module: nn.Module) -> None:
        for name, child in list(module._modules.items()):
            if child is None:
                continue
            visit(child)
            if (
                type(child) is nn.Module
                and _numbered(list(child._modules))
                and not child._parameters
                and not child._buffers
            ):
                seq = nn.Sequential(OrderedDict(child._modules))  # a plain dict would be read as one module
                seq.train(child.training)
                module._modules[name] = seq  # same key: the parent keeps its order

    visit(root)
    return root


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
    paths = module_paths(graph)
    fxg = torch.fx.Graph()
    values: dict[int, torch.fx.Node] = {}
    values[0] = fxg.placeholder("x")
    values[0].meta["cnnspec_span"] = graph.input.span
    # The batch size a learned tensor is expanded to, read from the tensor its IR node records as its
    # input (made once per such tensor), so that the fx graph reads only what the IR says it does:
    # a pipeline stage that starts between the network's input and the tensor has no `x` to read.
    batch: dict[int, torch.fx.Node] = {}
    for node in graph.layers():
        if node.id not in needed:
            continue
        args = [values[i] for i in node.inputs]
        kind = lookup(node.kind)
        assert kind is not None
        # A function node is named after its layer's path, as fx names a call_module after its
        # target; the paths are unique, and fx makes the names unique where flattening collides.
        name = _node_name(fx_name(node.path))
        if kind.arity == "none":
            # A learned tensor, read where it is registered; where a reader does not broadcast it (torch.cat,
            # or a layer), it is read expanded over the batch (ViT's class_token.expand(n, -1, -1)).
            out = fxg.get_attr(paths[node.path])
            if not all(broadcasts(graph.nodes[u]) for u in graph.users(node.id)):
                source = node.inputs[0]
                if source not in batch:
                    batch[source] = fxg.create_node("call_method", "size", (values[source], 0), name="batch")
                shape = (out, batch[source], *node.out_shape)
                out = fxg.create_node("call_method", "expand", shape, name=f"{name}_expanded")
        elif node.has_module:
            target = paths[node.path]
            # fx names a module's node after its target, lower-cased; `self` would rebind forward's own.
            own = _node_name(target) if target.lower() == "self" else None
            out = fxg.create_node("call_module", target, (args[0],), name=own)
        elif kind.takes_list:
            fn = _function(kind.function or "")
            out = fxg.call_function(fn, (args, *kind.function_args(Attrs(node.attrs))), name=name)
        elif kind.is_join:
            fn = _function(kind.function or "")
            # A partial sum is the join's own value, so only the first step needs the check.
            in_place = _function(kind.inplace_function) if kind.inplace_function else fn
            first = in_place if _may_run_inplace(graph, node) else fn
            out = args[0]
            for i, other in enumerate(args[1:], 2):
                # add { a; b; c } is ((a + b) + c): the partial sums are named apart from the layer.
                step = first if i == 2 else in_place
                out = fxg.call_function(step, (out, other), name=name if i == len(args) else f"{name}_partial")
                out.meta["cnnspec_span"] = node.span
        else:
            fn = _function(kind.function or "")
            out = fxg.call_function(fn, (args[0], *kind.function_args(Attrs(node.attrs))), name=name)
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

    modules = module_tree(build_modules(graph))
    name = fx_name(graph.network)
    if not graph.aux:
        return sequential_scopes(torch.fx.GraphModule(modules, to_fx_graph(graph), class_name=name))
    from cnnspec.layers.nn import AuxOutputsGraphModule

    # GraphModule copies the modules its graph calls into containers of its own (plain nn.Modules),
    # so the scopes become Sequentials after it is built.
    gm = AuxOutputsGraphModule(
        modules,
        to_fx_graph(graph, with_aux=True),
        to_fx_graph(graph, with_aux=False),
        class_name=name,
        aux_names=[a.name for a in graph.aux],
        aux_weights=[a.weight for a in graph.aux],
    )
    return sequential_scopes(gm)


# operator is imported so that _function("operator.add") resolves without a hidden import.
_ = operator
