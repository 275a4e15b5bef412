"""Stage 4, the torch.fx backend: the compiled GraphModule against the static analysis.

For every stock spec the compiled module has exactly the statically counted
parameters and buffers, and the shapes the elaborator inferred are the
shapes a real tensor takes through it (observed with fx's ShapeProp, node
by node). The module keeps the spec's names and spans, trains (backward),
runs under torch.compile(fullgraph=True), and moves to CUDA when there is one.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch
import torch.fx
from support import CANON, SPECS, assert_static_shapes, device_for, stock_params

import cnnspec
from cnnspec.api import analyse
from cnnspec.backends.fx import fx_name, to_graph_module
from cnnspec.layers.nn import AuxOutputsGraphModule
from cnnspec.syntax.source import Span


@pytest.mark.parametrize("spec", stock_params())
def test_compiled_parameter_count_equals_the_static_count(spec: Path) -> None:
    report = cnnspec.check(spec)
    with torch.device(device_for(spec)):  # counts need no weights: the family's big members are not initialised
        gm = cnnspec.compile(spec)
    assert sum(p.numel() for p in gm.parameters()) == report.total_params
    assert sum(p.numel() for p in gm.parameters() if p.requires_grad) == report.trainable_params
    assert sum(b.numel() for b in gm.buffers()) == report.buffers
    for row in report.layers:
        if row.op == "param":  # a learned tensor is registered at its path itself, not as a module
            tensor = gm.get_parameter(row.path) if row.params else gm.get_buffer(row.path)
            assert tensor.numel() == row.params + row.buffers, row.path
        elif row.params or row.buffers:
            module = gm.get_submodule(row.path)
            assert sum(p.numel() for p in module.parameters()) == row.params, row.path
            assert sum(b.numel() for b in module.buffers()) == row.buffers, row.path


# The canon's shapes are checked the same way by test_parity.py, on the forward pass it runs anyway.
# A family's bigger members (support.FORWARD_BY) run on the meta device: their shapes come from the same
# layers at other sizes, and the smallest member's real tensor proves the kernels agree with them.
@pytest.mark.parametrize("spec", stock_params(exclude=set(CANON)))
def test_static_shapes_are_the_shapes_of_a_real_tensor(spec: Path) -> None:
    report = cnnspec.check(spec)
    with torch.device(device_for(spec)):
        gm = cnnspec.compile(spec)
        gm.train(isinstance(gm, AuxOutputsGraphModule))  # aux heads run only in training mode
        assert_static_shapes(report, gm, torch.randn(2, *report.input_shape))


def test_static_shapes_of_auxiliary_heads() -> None:
    """GoogLeNet 2014's heads are off by default, so the generic test does not see them."""
    spec = SPECS / "googlenet2014.cnn"
    report = cnnspec.check(spec, aux_logits=True)
    gm = cnnspec.compile(spec, aux_logits=True).train()
    out = assert_static_shapes(report, gm, torch.randn(2, *report.input_shape))
    assert isinstance(out, tuple) and len(out) == 1 + len(gm.aux_names)


def test_shapes_at_an_overridden_input_and_head() -> None:
    spec = SPECS / "resnet50.cnn"
    report = cnnspec.check(spec, input_shape=(3, 97, 131), num_classes=7)
    gm = cnnspec.compile(spec, input_shape=(3, 97, 131), num_classes=7).eval()
    assert_static_shapes(report, gm, torch.randn(2, 3, 97, 131))
    assert report.layers[-1].output_shape == [7]


# ------------------------------------------------------------ names and spans


def test_module_paths_and_spans_follow_the_spec() -> None:
    graph = analyse(SPECS / "resnet18.cnn").graph
    gm = to_graph_module(graph)
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert targets == [n.path for n in graph.layers() if n.has_module]
    assert {n.path for n in graph.layers() if not n.has_module} == {
        n.meta["cnnspec_path"] for n in gm.graph.nodes if n.op == "call_function"
    }
    lines = (SPECS / "resnet.cnn").read_text().splitlines()
    for node in gm.graph.nodes:
        if node.op == "output":
            continue
        span = node.meta["cnnspec_span"]
        assert isinstance(span, Span), node
        if node.op == "call_module" and node.target.endswith("conv1") and node.target.startswith("layer"):
            assert span.file.endswith("resnet.cnn")
            assert lines[span.line - 1].strip().startswith("conv1: conv(planes, 3")
    by_target = {n.target: n for n in gm.graph.nodes}
    assert (
        by_target["fc"].meta["cnnspec_span"].line
        == lines.index(next(line for line in lines if line.strip().startswith("fc:"))) + 1
    )


def test_state_dict_keys_are_the_spec_paths() -> None:
    text = """
block Unit(c) { conv: conv(c, 3, padding = 1); bn: batchnorm; relu }
network Named {
    input: 3 x 16 x 16
    stem: conv(8, 3)
    "unit{1}": Unit(8) * 2
    head: { flatten; fc: linear(4) }
}
"""
    gm = cnnspec.compile(text)
    assert type(gm).__name__ == "Named"
    keys = set(gm.state_dict())
    assert {"stem.weight", "stem.bias", "unit1.conv.weight", "unit2.bn.running_mean", "head.fc.weight"} <= keys
    assert not any(k.startswith("unit0") or k.startswith("unit3") for k in keys)


def test_state_dict_follows_the_spec_order_not_the_nesting_depth() -> None:
    text = """
network Ordered {
    input: 3 x 8 x 8
    stem: conv(4, 3, padding = 1)
    body { a: conv(4, 1); inner { b: conv(4, 1) } }
    adaptive_avgpool(1)
    flatten
    fc: linear(2)
}
"""
    gm = cnnspec.compile(text)
    assert [k for k in gm.state_dict() if k.endswith("weight")] == [
        "stem.weight", "body.a.weight", "body.inner.b.weight", "fc.weight"
    ]  # fmt: skip
    assert [n for n, _ in gm.named_children()] == ["stem", "body", "2", "fc"]


def test_numbered_scopes_index_and_iterate_like_torchvisions_sequentials() -> None:
    gm = cnnspec.compile(SPECS / "resnet50.cnn", num_classes=10, input_shape=(3, 64, 64))
    stage = gm.layer3
    assert isinstance(stage, torch.nn.Sequential) and len(stage) == 6
    assert stage[4].conv2 is gm.get_submodule("layer3.4.conv2")
    assert isinstance(stage[4].conv2, torch.nn.Conv2d) and stage[4].conv2.kernel_size == (3, 3)
    assert stage[-1] is stage[5] is gm.get_submodule("layer3.5")
    assert list(stage) == [gm.get_submodule(f"layer3.{i}") for i in range(6)]
    part = stage[1:3]
    assert isinstance(part, torch.nn.Sequential) and list(part) == [stage[1], stage[2]]
    with pytest.raises(IndexError):
        stage[6]
    assert isinstance(gm.layer2[0].downsample, torch.nn.Sequential)
    assert isinstance(gm.layer2[0].downsample[1], torch.nn.BatchNorm2d)
    # a scope with named children stays a plain module (no positions to index by)
    assert type(stage[4]) is torch.nn.Module
    # every layer is still called by its path
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "layer3.4.conv2" in targets and all(gm.get_submodule(str(t)) is not None for t in targets)
    # the same modules in fx's plain containers: the same state_dict keys, in order, and the same outputs
    plain = torch.fx.GraphModule(gm, gm.graph)
    assert not any(isinstance(m, torch.nn.Sequential) for m in plain.modules())
    assert list(gm.state_dict()) == list(plain.state_dict())
    gm.eval()
    plain.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(gm(x), plain(x))
    # copies keep the Sequentials
    for copied in (copy.deepcopy(gm), pickle.loads(pickle.dumps(gm))):
        assert isinstance(copied.layer3, torch.nn.Sequential) and len(copied.layer3) == 6
        assert list(copied.state_dict()) == list(gm.state_dict())


def test_a_scope_of_numbered_layers_is_a_sequential() -> None:
    text = """
network Numbered {
    input: 3 x 8 x 8
    features { conv(4, 3, padding = 1); relu; conv(4, 1) }
    gap { conv(4, 1); flatten }
    fc: linear(2)
}
"""
    gm = cnnspec.compile(text)
    assert isinstance(gm.features, torch.nn.Sequential) and len(gm.features) == 3
    assert isinstance(gm.features[1], torch.nn.ReLU) and gm.features[-1].kernel_size == (1, 1)
    # flatten is a function, not a module: gap holds only "0", still a sequence
    assert isinstance(gm.gap, torch.nn.Sequential) and len(gm.gap) == 1
    assert [k for k in gm.state_dict()] == [
        "features.0.weight", "features.0.bias", "features.2.weight", "features.2.bias", "gap.0.weight", "gap.0.bias",
        "fc.weight", "fc.bias",
    ]  # fmt: skip


def test_function_nodes_are_named_after_their_unique_layer_paths() -> None:
    graph = analyse(SPECS / "inception_v3.cnn").graph
    gm = to_graph_module(graph)
    functions = [n for n in gm.graph.nodes if n.op == "call_function"]
    paths = [n.meta["cnnspec_path"] for n in functions]
    assert len(paths) == len(set(paths)) == len([n for n in graph.layers() if not n.has_module])
    assert [n.name for n in functions] == [fx_name(p) for p in paths]
    assert {"Mixed_7b_concat", "Mixed_7b_concat_1", "Mixed_7b_concat_2"} <= {n.name for n in functions}


def test_a_join_of_three_branches_names_its_partial_results_apart() -> None:
    text = "network Three {\n input: 3 x 8 x 8\n add { conv(4, 1); conv(4, 1); conv(4, 1) }\n relu\n}\n"
    gm = cnnspec.compile(text)
    names = [n.name for n in gm.graph.nodes if n.op == "call_function"]
    assert names == ["add_partial", "add"]
    assert gm(torch.randn(2, 3, 8, 8)).shape == (2, 4, 8, 8)


def test_compiles_on_the_default_device() -> None:
    text = """
network Meta {
    input: 3 x 8 x 8
    init conv: weight = kaiming_normal(mode = "fan_out"), bias = zeros
    conv(4, 3)
    batchnorm
    flatten
    linear(2)
}
"""
    # The conv's init rules cover all its parameters, so it is allocated without default init.
    with torch.device("meta"):
        gm = cnnspec.compile(text)
    assert {t.device.type for t in gm.state_dict().values()} == {"meta"}


def test_activations_run_in_place_only_where_it_is_safe() -> None:
    gm = cnnspec.compile(SPECS / "resnet18.cnn")
    assert gm.get_submodule("2").inplace  # after bn1, read by nothing else
    text = """
network Fork {
    input: 3 x 8 x 8
    c: conv(4, 1)
    concat { relu; identity }
}
"""
    fork = cnnspec.compile(text)
    assert not fork.get_submodule("1").inplace  # the conv output is also read by the other branch
    x = torch.randn(2, 3, 8, 8)
    y = fork(x)
    c = fork.c(x)
    assert torch.equal(y[:, 4:], c)  # the identity branch saw the conv output unchanged
    assert torch.equal(y[:, :4], c.relu())


def test_where_activations_run_in_place_follows_the_saves_rules() -> None:
    """An activation overwrites its producer's output only if the producer's saves rule does not
    keep it (max pooling keeps its input and indices; sigmoid keeps its output), and backward
    gives the gradients of the same network run out of place."""
    text = """
network Pools {
    input: 3 x 8 x 8
    c: conv(4, 3, padding = 1)
    p: maxpool(2)
    r: relu
    s: sigmoid
    r2: relu
    flatten
    linear(5)
}
"""
    gm = cnnspec.compile(text)
    assert gm.r.inplace  # maxpool's output: autograd keeps nothing of it
    assert not gm.r2.inplace  # sigmoid's output: its backward reads it
    twin = copy.deepcopy(gm)
    twin.r.inplace = False
    x = torch.randn(2, 3, 8, 8)
    out, ref = gm(x), twin(x)
    out.square().sum().backward()
    ref.square().sum().backward()
    assert torch.equal(out, ref)
    for (name, p), q in zip(gm.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name


def _out_of_place(gm: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """A copy of gm whose in-place adds are plain adds."""
    import operator

    twin = copy.deepcopy(gm)
    for node in twin.graph.nodes:
        if node.target is operator.iadd:
            node.target = operator.add
    twin.recompile()
    return twin


def test_a_residual_add_overwrites_the_body_output_as_torchvision_does() -> None:
    import operator

    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "resnet50.cnn", input_shape=(3, 64, 64)).train()
    # `out += identity` in each of the 16 bottlenecks: the body ends in a batch norm, whose output
    # autograd does not keep and nothing else reads.
    assert sum(n.target is operator.iadd for n in gm.graph.nodes) == 16
    assert "+=" in gm.code
    twin = _out_of_place(gm)
    x = torch.randn(2, 3, 64, 64)
    for m in (gm, twin):
        torch.nn.functional.cross_entropy(m(x), torch.tensor([0, 1])).backward()
    assert torch.equal(gm(x), twin(x))
    for (name, p), q in zip(gm.named_parameters(), twin.parameters(), strict=True):
        assert torch.equal(p.grad, q.grad), name


def test_an_add_overwrites_no_value_that_autograd_or_another_layer_needs() -> None:
    import operator

    text = """
network Keep {
    input: 4 x 8 x 8
    conv(4, 1)
    residual { conv(4, 3, padding = 1); relu }
    c: conv(4, 1)
    add { {}; {} }
    d: conv(4, 1)
    add { relu; {}; {} }
}
"""
    # The relu keeps its output for backward; `add { {}; {} }` reads c twice; d's output is read by
    # the second branch too. Only the three-way add's partial sum, its own value, is overwritten.
    gm = cnnspec.compile(text).train()
    steps = [n.target for n in gm.graph.nodes if n.op == "call_function"]
    assert steps == [operator.add, operator.add, operator.add, operator.iadd]
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    gm(x).sum().backward()  # autograd raises if a value it kept was overwritten
    twin = _out_of_place(gm)
    x2 = x.detach().clone().requires_grad_()
    twin(x2).sum().backward()
    assert torch.equal(x.grad, x2.grad)


# ------------------------------------------------------------------ training


@pytest.mark.parametrize(("name", "shape"), [("lenet5", (1, 32, 32)), ("resnet18", (3, 64, 64))])
def test_backward_reaches_every_parameter(name: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / f"{name}.cnn", input_shape=shape).train()
    x = torch.randn(2, *shape)
    out = gm(x)
    loss = torch.nn.functional.cross_entropy(out, torch.tensor([0, 1]))
    loss.backward()
    for pname, p in gm.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
    assert sum(p.grad.abs().sum().item() for p in gm.parameters() if p.grad is not None) > 0


def test_a_few_optimiser_steps_fit_a_fixed_batch() -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "lenet5.cnn").train()
    x, y = torch.randn(8, 1, 32, 32), torch.arange(8) % 10
    opt = torch.optim.Adam(gm.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(gm(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_auxiliary_outputs_in_training_and_eval() -> None:
    spec = SPECS / "googlenet2014.cnn"
    report = cnnspec.check(spec, aux_logits=True, num_classes=10)
    gm = cnnspec.compile(spec, aux_logits=True, num_classes=10)
    assert isinstance(gm, AuxOutputsGraphModule)
    assert gm.aux_names == ["aux1", "aux2"] and gm.aux_weights == [0.3, 0.3]
    assert sum(p.numel() for p in gm.parameters()) == report.total_params
    assert report.total_params > cnnspec.check(spec, num_classes=10).total_params
    x = torch.randn(2, 3, 224, 224)
    gm.train()
    main, aux1, aux2 = gm(x)
    assert main.shape == aux1.shape == aux2.shape == (2, 10)
    loss = sum(
        w * torch.nn.functional.cross_entropy(o, torch.tensor([1, 2]))
        for w, o in zip([1.0, *gm.aux_weights], (main, aux1, aux2), strict=True)
    )
    loss.backward()
    assert gm.get_submodule("aux1.fc2").weight.grad is not None
    gm.eval()
    with torch.no_grad():
        out = gm(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    called = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    assert not any(str(t).startswith("aux") for t in called)  # eval does not compute the heads


def test_dropout_is_off_in_eval_and_on_in_training() -> None:
    gm = cnnspec.compile(SPECS / "alexnet.cnn", input_shape=(3, 64, 64))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        gm.eval()
        assert torch.equal(gm(x), gm(x))
        gm.train()
        assert not torch.equal(gm(x), gm(x))


def test_compiling_is_deterministic_under_a_seed() -> None:
    torch.manual_seed(3)
    a = cnnspec.compile(SPECS / "resnet18.cnn").state_dict()
    torch.manual_seed(3)
    b = cnnspec.compile(SPECS / "resnet18.cnn").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_to_graph_module_of_an_analysed_graph() -> None:
    checked = analyse(SPECS / "lenet5.cnn")
    gm = to_graph_module(checked.graph)
    assert gm(torch.randn(3, 1, 32, 32)).shape == (3, 10)


# -------------------------------------------------------- torch.compile, CUDA


@pytest.mark.slow
@pytest.mark.parametrize(("name", "shape"), [("lenet5", (1, 32, 32)), ("resnet18", (3, 64, 64))])
def test_runs_under_torch_compile_fullgraph(name: str, shape: tuple[int, ...]) -> None:
    gm = cnnspec.compile(SPECS / f"{name}.cnn", input_shape=shape).eval()
    compiled = torch.compile(gm, fullgraph=True)
    x = torch.randn(2, *shape)
    with torch.no_grad():
        expected = gm(x)
        got = compiled(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_moves_to_cuda_and_trains_there() -> None:
    gm = cnnspec.compile(SPECS / "resnet18.cnn", input_shape=(3, 64, 64)).cuda().train()
    assert all(p.is_cuda for p in gm.parameters()) and all(b.is_cuda for b in gm.buffers())
    x = torch.randn(2, 3, 64, 64, device="cuda")
    loss = gm(x).square().mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.is_cuda for p in gm.parameters())
