"""The idiomatic Python export (cnnspec.backends.pysource): classes per block, nn.Sequential for runs.

Every stock spec's generated file is imported from a temporary directory, must
rebuild the compiled module's state_dict keys in order (strict load), the same
modules in the same order, and the same outputs in eval mode on a seeded
input; the init rules must be applied by the generated class itself.
"""

from __future__ import annotations

import ast as pyast
from pathlib import Path

import pytest
import torch
from support import SPECS, device_for, load_generated_class, stock_params

from cnnspec.api import analyse
from cnnspec.backends.fx import to_graph_module
from cnnspec.backends.pysource import python_source

#: The stock specs that only define a family (a network needing a parameter) are skipped by stock_params.
STOCK = stock_params()


def _load(source: str, tmp_path: Path, tag: str = "model") -> type[torch.nn.Module]:
    path = tmp_path / f"{tag}.py"
    path.write_text(source)
    return load_generated_class(path)  # type: ignore[no-any-return]


def _leaves(model: torch.nn.Module) -> list[str]:
    """Each module that has no children, as its class and settings (its repr), in registration order."""
    return [repr(m) for m in model.modules() if not list(m.children())]


@pytest.mark.parametrize("spec", STOCK)
def test_stock_spec_exports_idiomatic_source_with_the_same_state_dict_and_outputs(spec: Path, tmp_path: Path) -> None:
    """A family's bigger members (support.FORWARD_BY) generate the smaller one's classes with other arguments:
    they are built and run on the meta device (keys, modules, output shape), the smallest one for real.
    The generated class is built on the meta device either way and takes the compiled module's tensors
    (its own initialisation is test_init_rules_are_applied_by_the_generated_class's; drawing VGG's
    130 million weights only to replace them costs seconds)."""
    checked = analyse(spec)
    device = device_for(spec)
    torch.manual_seed(0)
    with torch.device(device):
        gm = to_graph_module(checked.graph).eval()
        source = python_source(gm, checked.graph)
        assert "_add(" not in source and "getattr(getattr" not in source
    with torch.device("meta"):
        model = _load(source, tmp_path)().eval()
    assert list(model.state_dict()) == list(gm.state_dict())
    model.load_state_dict(gm.state_dict(), strict=True, assign=True)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()]) or device == "meta"
    assert _leaves(model) == _leaves(gm)
    x = torch.randn(2, *checked.graph.input_shape, generator=torch.Generator().manual_seed(1)).to(device)
    with torch.no_grad():
        got, want = model(x), gm(x)
    assert got.shape == want.shape
    if device != "meta":
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_resnet50_reads_like_torchvision(tmp_path: Path) -> None:
    checked = analyse(SPECS / "resnet50.cnn")
    source = python_source(to_graph_module(checked.graph), checked.graph)
    tree = pyast.parse(source)
    classes = [n.name for n in tree.body if isinstance(n, pyast.ClassDef)]
    assert classes == ["Bottleneck", "resnet50"]
    assert len(source.splitlines()) <= 130  # 361 unrolled
    assert "self.layer1 = nn.Sequential(" in source
    assert "*(Bottleneck(1024, 256, 1, 1024) for _ in range(5))" in source  # layer3.1-5
    assert "if self.downsample is not None:" in source
    assert "out = out + identity" in source
    assert "self.conv1 = nn.Conv2d(in_channels, planes, kernel_size=1, bias=False)" in source
    assert "nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')" in source
    assert max(len(line) for line in source.splitlines()) <= 120
    model = _load(source, tmp_path)()
    assert isinstance(model.layer3, torch.nn.Sequential) and len(model.layer3) == 6
    assert model.layer3[4].downsample is None and isinstance(model.layer3[0].downsample, torch.nn.Sequential)


def test_googlenet_blocks_are_classes_with_the_specs_arguments(tmp_path: Path) -> None:
    checked = analyse(SPECS / "googlenet.cnn")
    source = python_source(to_graph_module(checked.graph), checked.graph)
    assert "class Inception(nn.Module):" in source
    assert "torch.cat([branch1, branch2, branch3, branch4], 1)" in source
    init = next(
        n for n in pyast.walk(pyast.parse(source)) if isinstance(n, pyast.ClassDef) and n.name == "Inception"
    ).body[1]
    assert isinstance(init, pyast.FunctionDef)
    params = [a.arg for a in init.args.args]
    assert {"c1", "c3red", "c3", "c5red", "c5", "pool_proj"} <= set(params)


def _std(t: torch.Tensor) -> float:
    return float(t.float().std())


def test_init_rules_are_applied_by_the_generated_class(tmp_path: Path) -> None:
    text = """
block Unit() { conv: conv(16, 3, padding = 1); bn: batchnorm; relu }
network N {
    input: 3 x 8 x 8
    init conv: weight = kaiming_normal(mode = "fan_out", nonlinearity = "relu"), bias = zeros
    init batchnorm "b.*.bn": weight = constant(value = 0.5)
    init linear: weight = normal(std = 0.01), bias = ones
    stem: conv(16, 3, padding = 1)
    b: { Unit; Unit }
    bn: batchnorm
    adaptive_avgpool(1)
    flatten
    fc: linear(500)
}
"""
    checked = analyse(text)
    source = python_source(to_graph_module(checked.graph), checked.graph)
    model = _load(source, tmp_path)()
    torch.testing.assert_close(model.b[0].bn.weight, torch.full((16,), 0.5))
    torch.testing.assert_close(model.bn.weight, torch.ones(16))  # the pattern leaves the top one alone
    assert float(model.stem.bias.detach().abs().max()) == 0.0
    assert float(model.fc.bias.detach().min()) == 1.0
    assert abs(_std(model.fc.weight.detach()) - 0.01) < 0.002
    fan_out = 16 * 3 * 3
    assert abs(_std(model.b[1].conv.weight.detach()) - (2 / fan_out) ** 0.5) < 0.03


def test_aux_heads_run_in_training_mode_only(tmp_path: Path) -> None:
    checked = analyse(SPECS / "googlenet.cnn", aux_logits=True, input_shape=(3, 96, 96))
    gm = to_graph_module(checked.graph)
    source = python_source(gm, checked.graph)
    model = _load(source, tmp_path)()
    model.load_state_dict(gm.state_dict(), strict=True)
    assert model.aux_names == gm.aux_names and model.aux_weights == gm.aux_weights
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), gm.eval()(x), rtol=0, atol=0)
        torch.manual_seed(3)
        want = gm.train()(x)
        torch.manual_seed(3)
        got = model.train()(x)
    assert isinstance(got, tuple) and len(got) == 3
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_a_scope_with_two_outputs_holds_its_modules_and_is_called_from_above(tmp_path: Path) -> None:
    """A group whose value an auxiliary head also reads is no callable module: a plain holder, as compiled."""
    text = """
block Unit(c) { conv: conv(c, 3, padding = 1); relu }
network H {
    input: 2 x 8 x 8
    g: {
        a: conv(4, 3, padding = 1)
        aux(weight = 0.3) { head: { adaptive_avgpool(1); flatten; linear(3) } }
        b: relu
        Unit(4)
    }
    x: Unit(4)
    adaptive_avgpool(1)
    flatten
    linear(5)
}
"""
    checked = analyse(text)
    torch.manual_seed(0)
    gm = to_graph_module(checked.graph)
    source = python_source(gm, checked.graph)
    assert "self.g = nn.Module()" in source and "aux1 = self.g.head(x)" in source
    model = _load(source, tmp_path)()
    assert list(model.state_dict()) == list(gm.state_dict())
    model.load_state_dict(gm.state_dict(), strict=True)
    x = torch.randn(3, 2, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x), gm.eval()(x), rtol=0, atol=0)
        for a, b in zip(model.train()(x), gm.train()(x), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_names_the_generated_code_uses_are_kept_apart(tmp_path: Path) -> None:
    """A block named `super`, a network named `getattr`, block arguments named `nn`, `self`, `torch`
    and `x`, labels named like the names given to unnamed layers (relu1): the file imports and runs."""
    text = """
block super(nn, self, torch, x) {
    relu1: conv(nn, 3, padding = self)
    relu
    relu2: batchnorm
    relu
    conv(torch, 1)
}
block N2(in_channels) { a: conv(in_channels, 1); relu }
network getattr {
    input: 3 x 8 x 8
    s1: super(4, 1, 6, 0)
    s2: super(5, 1, 7, 0)
    "self": N2(8)
    t: N2(9)
    flatten
    linear(3)
}
"""
    checked = analyse(text)
    gm = to_graph_module(checked.graph)
    source = python_source(gm, checked.graph)
    assert "class super_(nn.Module):" in source and "class getattr_(nn.Module):" in source
    model = _load(source, tmp_path)().eval()
    assert list(model.state_dict()) == list(gm.state_dict())
    model.load_state_dict(gm.state_dict(), strict=True)
    assert _leaves(model) == _leaves(gm)
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), gm.eval()(x), rtol=0, atol=0)
