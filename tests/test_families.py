"""The families after 2015 against torchvision: parameter counts, strict loads, output parity.

Each spec is written with torchvision's module names, so torchvision's
state_dict loads into the compiled module with strict=True; the outputs must
then agree within 1e-5 in eval mode, at the network's native resolution, for
one member of each family (its smallest): the others are the same family file
with other numbers, or the same network less a head that eval mode skips, and
load strictly on the meta device (Case.forward_by names who stands for them).
The reference's batch-norm affine parameters and running statistics are
randomised first, so that parity tests more than freshly initialised
normalisation layers. Family parameters (EfficientNet's scaling, ResNeXt's
groups) are checked to give the stock networks from one family file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.models as tvm
from torch import nn

import cnnspec
from cnnspec.semantics.values import MAX_LIST, EvalError, evaluate
from cnnspec.syntax.parser import parse_expr

SPECS = Path(__file__).resolve().parent.parent / "specs"


@dataclass(frozen=True)
class Case:
    """One stock network: its spec, its torchvision twin and its published size."""

    id: str
    spec: str
    reference: Callable[[], nn.Module]
    params: int
    resolution: int = 224
    set: dict[str, Any] = field(default_factory=dict)
    slow: bool = False
    #: The member whose full-size forward parity stands for this one (the same family file with other
    #: numbers, or the same network); None: its own forward parity is run.
    forward_by: str | None = None


CASES = [
    Case("densenet121", "densenet121.cnn", lambda: tvm.densenet121(), 7_978_856),
    Case("densenet169", "densenet169.cnn", lambda: tvm.densenet169(), 14_149_480, forward_by="densenet121"),
    Case("mobilenet_v2", "mobilenet_v2.cnn", lambda: tvm.mobilenet_v2(), 3_504_872),
    Case("efficientnet_b0", "efficientnet_b0.cnn", lambda: tvm.efficientnet_b0(), 5_288_548),
    Case(
        "efficientnet_b3",
        "efficientnet_b3.cnn",
        lambda: tvm.efficientnet_b3(),
        12_233_232,
        300,
        forward_by="efficientnet_b0",
    ),
    Case("resnext50_32x4d", "resnext50_32x4d.cnn", lambda: tvm.resnext50_32x4d(), 25_028_904, slow=True),
    Case(
        "inception_v3",
        "inception_v3.cnn",
        lambda: tvm.inception_v3(aux_logits=True, init_weights=False),
        27_161_264,
        299,
        slow=True,
    ),
    Case(
        "inception_v3_no_aux",
        "inception_v3.cnn",
        lambda: tvm.inception_v3(aux_logits=False, init_weights=False),
        23_834_568,
        299,
        {"aux_logits": False},
        forward_by="inception_v3",
    ),
    # convnext_tiny's forward parity is test_convnext_tiny_parity_with_layer_scales_at_work's (which
    # also moves the layer scales and layer norms off their initial values).
    Case("convnext_tiny", "convnext_tiny.cnn", lambda: tvm.convnext_tiny(), 28_589_128, forward_by="convnext_tiny"),
    Case("convnext_small", "convnext_small.cnn", lambda: tvm.convnext_small(), 50_223_688, forward_by="convnext_tiny"),
    Case("convnext_base", "convnext_base.cnn", lambda: tvm.convnext_base(), 88_591_464, forward_by="convnext_tiny"),
    Case(
        "googlenet_aux",
        "googlenet.cnn",
        lambda: tvm.googlenet(aux_logits=True, init_weights=False),
        13_004_888,
        set={"aux_logits": True},
    ),
]


def _params(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in cases]


def _randomise_norms(model: nn.Module, seed: int = 0) -> None:
    """Give every batch norm non-trivial affine parameters and running statistics."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("case", _params(CASES))
def test_parameter_count_is_torchvisions(case: Case) -> None:
    report = cnnspec.check(SPECS / case.spec, **case.set)
    assert report.total_params == case.params


@pytest.mark.parametrize("case", _params([c for c in CASES if c.forward_by]))
def test_strict_load_on_the_meta_device(case: Case) -> None:
    """The members whose forward parity another member's stands for: parameters, names and shapes need no weights."""
    with torch.device("meta"):
        ours = cnnspec.compile(SPECS / case.spec, **case.set)
        ref = case.reference()
    assert _n_params(ours) == _n_params(ref) == case.params
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)


@pytest.mark.parametrize("case", _params([c for c in CASES if not c.forward_by]))
def test_strict_load_and_eval_parity(case: Case) -> None:
    torch.manual_seed(0)
    ours = cnnspec.compile(SPECS / case.spec, **case.set)
    ref = case.reference()
    assert _n_params(ours) == _n_params(ref) == case.params
    _randomise_norms(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, case.resolution, case.resolution)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape == (2, 1000)
    assert (got - want).abs().max().item() <= 1e-5


# ------------------------------------------------------------ auxiliary outputs


def test_googlenet_aux_train_and_eval() -> None:
    torch.manual_seed(0)
    ours = cnnspec.compile(SPECS / "googlenet.cnn", aux_logits=True, dropout=0.0, dropout_aux=0.0)
    ref = tvm.googlenet(aux_logits=True, init_weights=False, dropout=0.0, dropout_aux=0.0)
    _randomise_norms(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.aux_names == ["aux1", "aux2"]
    assert ours.aux_weights == [0.3, 0.3]
    x = torch.randn(2, 3, 224, 224)
    ours.train()
    ref.train()
    with torch.no_grad():
        main, aux1, aux2 = ours(x)
        want = ref(x)  # GoogLeNetOutputs(logits, aux_logits2, aux_logits1)
    for got, exp in ((main, want.logits), (aux1, want.aux_logits1), (aux2, want.aux_logits2)):
        assert got.shape == (2, 1000)
        assert (got - exp).abs().max().item() <= 1e-5
    ours.eval()
    ref.eval()
    with torch.no_grad():
        out = ours(x)
        assert isinstance(out, torch.Tensor)
        assert (out - ref(x)).abs().max().item() <= 1e-5


def test_googlenet_without_aux_has_no_aux_outputs() -> None:
    model = cnnspec.compile(SPECS / "googlenet.cnn")
    assert not hasattr(model, "aux_names")
    assert not any(k.startswith("aux") for k in model.state_dict())
    assert cnnspec.check(SPECS / "googlenet.cnn").total_params == 6_624_904


@pytest.mark.slow
def test_inception_v3_aux_train_and_eval() -> None:
    torch.manual_seed(0)
    ours = cnnspec.compile(SPECS / "inception_v3.cnn", dropout=0.0)
    ref = tvm.inception_v3(aux_logits=True, init_weights=False, dropout=0.0)
    _randomise_norms(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert ours.aux_names == ["aux1"]
    assert ours.aux_weights == [0.4]
    x = torch.randn(2, 3, 299, 299)
    ours.train()
    ref.train()
    with torch.no_grad():
        main, aux = ours(x)
        want = ref(x)  # InceptionOutputs(logits, aux_logits)
    assert (main - want.logits).abs().max().item() <= 1e-5
    assert (aux - want.aux_logits).abs().max().item() <= 1e-5
    ours.eval()
    with torch.no_grad():
        assert ours(x).shape == (2, 1000)


# ------------------------------------------------------------ family parameters


def test_efficientnet_b0_and_b3_from_one_family_file() -> None:
    for stock, width, depth, res, params in (
        ("efficientnet_b0.cnn", 1.0, 1.0, 224, 5_288_548),
        ("efficientnet_b3.cnn", 1.2, 1.4, 300, 12_233_232),
    ):
        assert 'import "efficientnet.cnn"' in (SPECS / stock).read_text()
        stock_report = cnnspec.check(SPECS / stock)
        family = cnnspec.check(SPECS / "efficientnet.cnn", width_mult=width, depth_mult=depth, resolution=res)
        assert stock_report.total_params == family.total_params == params
        assert stock_report.input_shape == family.input_shape == [3, res, res]


def test_efficientnet_stochastic_depth_grows_with_block_index() -> None:
    from cnnspec.layers.nn import StochasticDepth

    ours = cnnspec.compile(SPECS / "efficientnet_b3.cnn")
    ref = tvm.efficientnet_b3()
    got = {n: m.p for n, m in ours.named_modules() if isinstance(m, StochasticDepth)}
    want = {
        n: m.p
        for n, m in ref.named_modules()
        if type(m).__name__ == "StochasticDepth" and ref.get_submodule(n.rsplit(".", 1)[0]).use_res_connect
    }
    assert got == want and len(got) == 19


def test_resnext_from_the_resnet_family() -> None:
    text = (SPECS / "resnext50_32x4d.cnn").read_text()
    assert 'import "resnet.cnn"' in text and "block " not in text
    family = cnnspec.check(SPECS / "resnet.cnn", layers=[3, 4, 6, 3], groups=32, width_per_group=4)
    assert family.total_params == cnnspec.check(SPECS / "resnext50_32x4d.cnn").total_params == 25_028_904
    # The same file with its defaults is still ResNet-50.
    assert cnnspec.check(SPECS / "resnet.cnn", layers=[3, 4, 6, 3]).total_params == 25_557_032


CONVNEXT = {
    "convnext_tiny": (28_589_128, [[96, 192, 3], [192, 384, 3], [384, 768, 9], [768, 0, 3]], 0.1),
    "convnext_small": (50_223_688, [[96, 192, 3], [192, 384, 3], [384, 768, 27], [768, 0, 3]], 0.4),
    "convnext_base": (88_591_464, [[128, 256, 3], [256, 512, 3], [512, 1024, 27], [1024, 0, 3]], 0.5),
}


@pytest.mark.parametrize("name", list(CONVNEXT))
def test_convnext_bindings_are_one_line_and_count_torchvisions_params(name: str) -> None:
    params, setting, sd = CONVNEXT[name]
    text = (SPECS / f"{name}.cnn").read_text()
    assert 'import "convnext.cnn"' in text and "block " not in text
    assert sum(line.startswith("network ") for line in text.splitlines()) == 1
    family = cnnspec.check(SPECS / "convnext.cnn", setting=setting, stochastic_depth_prob=sd)
    assert cnnspec.check(SPECS / f"{name}.cnn").total_params == family.total_params == params


def _randomise_convnext(model: nn.Module, seed: int = 0) -> None:
    """Layer scales and LayerNorm affine parameters far from their initial 1e-6, 1 and 0, so that every
    block's branch counts in the output."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layer_scale"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.5 + 0.25)
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)


def test_small_convnext_from_the_family_file_is_torchvisions() -> None:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [[16, 32, 2], [32, 64, 1], [64, 0, 2]]
    torch.manual_seed(0)
    ref = ConvNeXt([CNBlockConfig(a, b or None, n) for a, b, n in setting], stochastic_depth_prob=0.3, num_classes=10)
    ours = cnnspec.compile(SPECS / "convnext.cnn", setting=setting, stochastic_depth_prob=0.3, num_classes=10)
    _randomise_convnext(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())  # the same keys in the same order
    assert ours.features[1][0].layer_scale.shape == (16, 1, 1)
    # torchvision's modules, in its order, but for its Permute and Flatten modules (functions here).
    functions = {n for n, m in ref.named_modules() if type(m).__name__ in ("Permute", "Flatten")}
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules() if n not in functions]
    assert [m.p for m in ours.modules() if type(m).__name__ == "StochasticDepth"] == [
        m.p for m in ref.modules() if type(m).__name__ == "StochasticDepth"
    ]
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (ours.eval()(x) - ref.eval()(x)).abs().max().item() <= 1e-5


@pytest.mark.slow
def test_convnext_tiny_parity_with_layer_scales_at_work() -> None:
    torch.manual_seed(0)
    ours, ref = cnnspec.compile(SPECS / "convnext_tiny.cnn"), tvm.convnext_tiny()
    _randomise_convnext(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (ours.eval()(x) - ref.eval()(x)).abs().max().item() <= 1e-5


def test_densenet121_and_169_from_one_family_file() -> None:
    assert cnnspec.check(SPECS / "densenet.cnn").total_params == 7_978_856
    assert cnnspec.check(SPECS / "densenet.cnn", block_config=[6, 12, 32, 32]).total_params == 14_149_480


@pytest.mark.parametrize("width", [0.5, 0.75, 1.4])
def test_mobilenet_v2_width_multiplier(width: float) -> None:
    ours = cnnspec.compile(SPECS / "mobilenet_v2.cnn", width_mult=width)
    ref = tvm.mobilenet_v2(width_mult=width)
    assert _n_params(ours) == _n_params(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)


# ------------------------------------------------ the language feature EfficientNet needed


def _eval(text: str) -> Any:
    return evaluate(parse_expr(text), {"depth_mult": 1.4})


def test_list_comprehension() -> None:
    assert _eval("[ceil(n * depth_mult) for n in [1, 2, 2, 3, 3, 4, 1]]") == [2, 3, 3, 5, 5, 6, 2]
    assert _eval("[0] + cumsum([x * 2 for x in range(3)])") == [0, 0, 2, 6]
    assert _eval("[[i, 1] for i in range(2)]") == [[0, 1], [1, 1]]
    assert _eval("[a if a > 1 else 0 for a in range(3)]") == [0, 0, 2]


def test_list_comprehension_errors() -> None:
    with pytest.raises(EvalError, match="needs a list"):
        _eval("[x for x in 3]")
    with pytest.raises(EvalError, match="unknown name"):
        _eval("[x for x in y]")
    with pytest.raises(EvalError, match=str(MAX_LIST)):
        _eval("[range(1000) for x in range(2000)]")


@pytest.mark.slow  # torch.export and the ONNX exporter take ~40 s
def test_small_convnext_round_trips_through_python_pt2_and_onnx(tmp_path: Path) -> None:
    from support import load_generated_class

    from cnnspec.api import analyse
    from cnnspec.backends import export
    from cnnspec.backends.fx import to_graph_module

    setting = [[16, 32, 1], [32, 0, 2]]
    checked = analyse(SPECS / "convnext.cnn", setting=setting, num_classes=10, input_shape=(3, 64, 64))
    gm = to_graph_module(checked.graph).eval()
    _randomise_convnext(gm)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    export.write_python(gm, checked.graph, tmp_path / "model.py")
    model = load_generated_class(tmp_path / "model.py")().eval()
    model.load_state_dict(gm.state_dict(), strict=True)
    export.write_pt2(gm, checked.graph, tmp_path / "model.pt2")
    program = torch.export.load(str(tmp_path / "model.pt2")).module()
    with torch.no_grad():
        want = gm(x)
        torch.testing.assert_close(model(x), want, rtol=0, atol=0)
        torch.testing.assert_close(program(x), want, rtol=1e-5, atol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    export.write_onnx(gm, checked.graph, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert abs(got - want.numpy()).max() <= 1e-4
