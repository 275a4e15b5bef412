"""Initialisation: each layer kind's default, the canon's torchvision schemes, and `init` statements.

The statistical checks use big tensors (hundreds of thousands of values),
fixed seeds and 5-10% tolerances, so they are far from the noise: a
standard deviation estimated from n values is off by about 1/sqrt(2n).
"""

from __future__ import annotations

import math

import pytest
import torch
from support import CANON, SPECS, Canon

import cnnspec
from cnnspec.layers import init as inits


def _std(t: torch.Tensor) -> float:
    return t.detach().float().std().item()


# --------------------------------------------------------------- the canon


def test_resnet_convolutions_are_kaiming_normal_fan_out() -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "resnet50.cnn")
    for path in ("conv1", "layer3.0.conv2", "layer4.0.conv2", "layer4.2.conv3"):
        w = gm.get_submodule(path).weight
        fan_out = w.shape[0] * w.shape[2] * w.shape[3]
        expected = math.sqrt(2.0 / fan_out)
        assert _std(w) == pytest.approx(expected, rel=0.05), path
        assert abs(w.mean().item()) < 0.05 * expected
    for path in ("bn1", "layer2.1.bn2", "layer4.2.bn3"):
        bn = gm.get_submodule(path)
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
        assert torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
        assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))
    # The classifier keeps torch's default: uniform on ±1/sqrt(fan_in).
    fc = gm.get_submodule("fc")
    bound = 1 / math.sqrt(fc.weight.shape[1])
    assert fc.weight.abs().max().item() <= bound
    assert _std(fc.weight) == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_vgg_initialisation() -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "vgg11.cnn")
    conv = gm.get_submodule("features.8")  # 256 -> 512
    w = conv.weight
    assert _std(w) == pytest.approx(math.sqrt(2.0 / (w.shape[0] * 9)), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0
    for path in ("classifier.0", "classifier.3", "classifier.6"):
        lin = gm.get_submodule(path)
        assert _std(lin.weight) == pytest.approx(0.01, rel=0.05), path
        assert abs(lin.weight.mean().item()) < 0.001
        assert torch.count_nonzero(lin.bias) == 0, path


def test_googlenet_initialisation_is_torchvisions_truncated_normal() -> None:
    # torchvision: trunc_normal_(std=0.01, a=-2, b=2). a and b are absolute bounds,
    # so the cut is at 200 sigma and the values are N(0, 0.01) for all purposes.
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "googlenet.cnn")
    for path in ("conv1.conv", "inception4e.branch2.1.conv", "inception5b.branch1.conv", "fc"):
        w = gm.get_submodule(path).weight
        assert _std(w) == pytest.approx(0.01, rel=0.05), path
        assert w.abs().max().item() <= 2.0
    assert gm.get_submodule("fc").bias is not None
    for path in ("conv1.bn", "inception3a.branch4.1.bn"):
        bn = gm.get_submodule(path)
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))


def _tensor_stats(model: torch.nn.Module) -> dict[str, tuple[int, float, float, bool]]:
    out = {}
    for name, t in model.state_dict().items():
        if t.is_floating_point():
            flat = t.float().flatten()
            const = bool((flat == flat[0]).all())
            std = flat.std().item() if flat.numel() > 1 else 0.0
            out[name] = (flat.numel(), flat.mean().item(), std, const)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", ["alexnet", "vgg11", "googlenet", "resnet18", "resnet50"])
def test_every_tensor_is_drawn_like_torchvisions(name: str) -> None:
    """Tensor by tensor, the compiled module's initial values have torchvision's distribution."""
    canon = CANON[name]
    torch.manual_seed(1)
    ours = _tensor_stats(cnnspec.compile(canon.path))
    torch.manual_seed(2)
    theirs = _tensor_stats(canon.build_torchvision())
    assert ours.keys() == theirs.keys()
    compared = 0
    for key, (n, mean, std, const) in theirs.items():
        o_n, o_mean, o_std, o_const = ours[key]
        assert o_n == n, key
        assert o_const == const, key
        if const:
            assert o_mean == mean, key
        elif n >= 4096:
            assert o_std == pytest.approx(std, rel=0.1), key
            assert abs(o_mean - mean) < 0.15 * std, key
            compared += 1
    assert compared >= 5


# ------------------------------------------------------------ layer defaults


def test_default_initialisation_of_each_layer_kind_is_torchs() -> None:
    text = """
network Defaults {
    input: 64 x 16 x 16
    c: conv(256, 3, padding = 1)
    bn: batchnorm
    gn: groupnorm(8)
    ln: layernorm
    flatten
    fc: linear(300)
}
"""
    torch.manual_seed(0)
    gm = cnnspec.compile(text)
    conv = gm.get_submodule("c")
    fan_in = 64 * 9
    # kaiming_uniform(a=sqrt(5)) gives U(±1/sqrt(fan_in)); the bias is U(±1/sqrt(fan_in)) too.
    bound = 1 / math.sqrt(fan_in)
    assert conv.weight.abs().max().item() <= bound
    assert _std(conv.weight) == pytest.approx(bound / math.sqrt(3), rel=0.05)
    assert conv.bias.abs().max().item() <= bound and _std(conv.bias) > 0
    fc = gm.get_submodule("fc")
    bound = 1 / math.sqrt(256 * 16 * 16)
    assert fc.weight.abs().max().item() <= bound
    assert _std(fc.weight) == pytest.approx(bound / math.sqrt(3), rel=0.05)
    for path in ("bn", "gn", "ln"):
        norm = gm.get_submodule(path)
        assert torch.equal(norm.weight, torch.ones_like(norm.weight)), path
        assert torch.equal(norm.bias, torch.zeros_like(norm.bias)), path


# ------------------------------------------------------------ init statements


CUSTOM = """
network Custom(value = 0.5) {
    input: 16 x 12 x 12
    init conv:      weight = constant(value = value), bias = ones
    init linear:    weight = normal(mean = 1.0, std = 0.02), bias = constant(value = -3)
    init batchnorm: weight = zeros
    c1: conv(32, 3)
    bn: batchnorm
    c2: conv(32, 1, bias = false)
    adaptive_avgpool(1)
    flatten
    fc: linear(2000)
}
"""


def test_init_statements_apply_to_every_layer_of_the_kind() -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(CUSTOM)
    for path in ("c1", "c2"):
        w = gm.get_submodule(path).weight
        assert torch.equal(w, torch.full_like(w, 0.5)), path
    assert torch.equal(gm.c1.bias, torch.ones_like(gm.c1.bias))
    assert gm.c2.bias is None
    fc = gm.get_submodule("fc")
    assert fc.weight.mean().item() == pytest.approx(1.0, abs=0.001)
    assert _std(fc.weight) == pytest.approx(0.02, rel=0.05)
    assert torch.equal(fc.bias, torch.full_like(fc.bias, -3.0))
    bn = gm.get_submodule("bn")
    assert torch.equal(bn.weight, torch.zeros_like(bn.weight))
    assert torch.equal(bn.bias, torch.zeros_like(bn.bias))  # untouched: torch's default
    assert torch.equal(bn.running_var, torch.ones_like(bn.running_var))


def test_init_arguments_are_expressions_of_network_parameters() -> None:
    gm = cnnspec.compile(CUSTOM, value=-0.25)
    assert torch.equal(gm.c1.weight, torch.full_like(gm.c1.weight, -0.25))


def test_a_weight_only_rule_leaves_the_bias_at_torchs_default() -> None:
    """The backend skips torch's default draw only for modules a rule fully overwrites."""
    text = """
network WeightOnly {
    input: 64 x 8 x 8
    init conv: weight = zeros
    c: conv(128, 3)
}
"""
    torch.manual_seed(0)
    gm = cnnspec.compile(text)
    assert torch.count_nonzero(gm.c.weight) == 0
    bias = gm.c.bias
    bound = 1 / math.sqrt(64 * 9)
    assert torch.isfinite(bias).all()
    assert bias.abs().max().item() <= bound
    assert _std(bias) == pytest.approx(bound / math.sqrt(3), rel=0.2)


@pytest.mark.parametrize("scheme", ["kaiming_uniform(mode = \"fan_in\", nonlinearity = \"relu\")",
                                    "xavier_normal(gain = 2.0)", "xavier_uniform", "uniform(a = -0.1, b = 0.1)",
                                    "trunc_normal(std = 0.5, a = -0.2, b = 0.2)", "default"])
def test_schemes_draw_torch_nn_inits_distribution(scheme: str) -> None:
    text = f"network S {{\n input: 128 x 8 x 8\n init conv: weight = {scheme}\n c: conv(256, 3)\n}}\n"
    torch.manual_seed(0)
    w = cnnspec.compile(text).c.weight
    fan_in, fan_out = 128 * 9, 256 * 9
    expected = {
        "kaiming_uniform": math.sqrt(2.0 / fan_in),
        "xavier_normal": 2.0 * math.sqrt(2.0 / (fan_in + fan_out)),
        "xavier_uniform": math.sqrt(2.0 / (fan_in + fan_out)),
        "uniform": 0.2 / math.sqrt(12),
        "default": 1 / math.sqrt(3 * fan_in),
    }
    name = scheme.split("(")[0]
    if name == "trunc_normal":
        assert w.abs().max().item() <= 0.2
        assert w.min().item() < -0.19 and w.max().item() > 0.19
        return
    assert _std(w) == pytest.approx(expected[name], rel=0.05)


@pytest.mark.parametrize(
    ("stmt", "code", "words"),
    [
        ("init conv: weight = kaiming(mode = \"fan_out\")", "E", "unknown initialisation"),
        ("init conv: gamma = zeros", "E", "`weight` or `bias`"),
        ("init cnov: weight = zeros", "E", "did you mean `conv`"),
        ("init conv: weight = normal(sigma = 2)", "E", "keyword arguments mean, std"),
    ],
)
def test_bad_init_statements_are_errors(stmt: str, code: str, words: str) -> None:
    text = f"network B {{\n input: 3 x 8 x 8\n {stmt}\n conv(4, 3)\n}}\n"
    with pytest.raises(cnnspec.SpecError) as e:
        cnnspec.check(text)
    (d,) = e.value.errors
    assert d.code.startswith(code) and d.span is not None and d.span.line == 3
    assert words in d.message + " ".join(d.help), (d.message, d.help)


def test_init_inside_a_block_is_an_error() -> None:
    text = "block B() { init conv: weight = zeros\n conv(4, 1) }\nnetwork N {\n input: 3 x 8 x 8\n B\n}\n"
    with pytest.raises(cnnspec.SpecError) as e:
        cnnspec.check(text)
    (d,) = e.value.errors
    assert "top level" in d.message and d.span is not None and d.span.line == 1


# ------------------------------------------------------- module path patterns

PATTERNS = """
block Unit(c) {
    conv1: conv(c, 3, padding = 1)
    bn1:   batchnorm
    conv2: conv(c, 3, padding = 1)
    bn2:   batchnorm
}

network P(zero_last = false) {
    input: 8 x 8 x 8
    init conv: weight = constant(value = 0.5)
    init conv "stage.*.conv2": weight = constant(value = 2.0)
    init conv "stage.1.conv2": weight = constant(value = 3.0)
    if zero_last { init batchnorm "stage.*.bn2": weight = zeros }
    stage: { Unit(8) * 3 }
    head: conv(8, 1)
}
"""


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("layer*.*.bn3", "layer1.0.bn3", True),
        ("layer*.*.bn3", "layer4.12.bn3", True),
        ("layer*.*.bn3", "layer1.0.bn2", False),
        ("layer*.bn3", "layer1.0.bn3", False),  # a `*` does not cross a dot
        ("layer1.*", "layer1.0.bn3", False),
        ("AuxLogits.fc", "AuxLogits.fc", True),
        ("AuxLogits.fc", "AuxLogits.fc2", False),
        ("stage.[02].conv?", "stage.2.conv1", True),
        ("stage.[02].conv?", "stage.1.conv1", False),
        ("Stage.*", "stage.1", False),  # case-sensitive, as module paths are
    ],
)
def test_a_pattern_matches_module_paths_name_by_name(pattern: str, path: str, matches: bool) -> None:
    assert inits.path_matches(pattern, path) is matches


def test_pattern_rules_apply_to_matching_layers_in_the_order_written() -> None:
    gm = cnnspec.compile(PATTERNS)
    values = {p: gm.get_submodule(p).weight.unique().tolist() for p in (
        "stage.0.conv1", "stage.0.conv2", "stage.1.conv2", "stage.2.conv2", "head")}
    assert values == {
        "stage.0.conv1": [0.5],  # the kind's rule only
        "stage.0.conv2": [2.0],  # the pattern's rule after it
        "stage.1.conv2": [3.0],  # and the narrower one written last
        "stage.2.conv2": [2.0],
        "head": [0.5],
    }


def test_init_may_stand_in_an_if_at_the_networks_top_level() -> None:
    off, on = cnnspec.compile(PATTERNS), cnnspec.compile(PATTERNS, zero_last=True)
    for i in range(3):
        assert torch.equal(off.get_submodule(f"stage.{i}.bn2").weight, torch.ones(8))
        assert torch.equal(on.get_submodule(f"stage.{i}.bn2").weight, torch.zeros(8))
        assert torch.equal(on.get_submodule(f"stage.{i}.bn1").weight, torch.ones(8))


def test_a_pattern_that_matches_nothing_is_a_warning_that_points_at_it() -> None:
    text = PATTERNS.replace('"stage.1.conv2"', '"stage.1.conv3"')
    warnings = cnnspec.api.analyse(text).warnings
    (w,) = [w for w in warnings if w.code == "W007"]
    assert w.span is not None and w.span.line == 13 and "stage.1.conv3" in w.message
    assert "stage.0.conv1" in w.help[0]  # the layers of that kind it could have named


@pytest.mark.parametrize(("spec", "unit_bn"), [("resnet18", "bn2"), ("resnet50", "bn3")])
def test_zero_init_residual_zeroes_what_torchvisions_does(spec: str, unit_bn: str) -> None:
    """torchvision's zero_init_residual=True: the last batch norm of each residual branch starts at 0."""
    canon = CANON[spec]
    ours = cnnspec.compile(canon.path, zero_init_residual=True)
    tv = Canon(canon.spec, canon.torchvision, canon.params, {"zero_init_residual": True}).build_torchvision()

    def zeroed(m: torch.nn.Module) -> list[str]:
        return sorted(k for k, v in m.state_dict().items() if k.endswith(".weight") and not v.any())

    assert zeroed(ours) == zeroed(tv)
    assert zeroed(ours) and all(k.endswith(f".{unit_bn}.weight") for k in zeroed(ours))
    assert zeroed(cnnspec.compile(canon.path)) == []  # off by default, as in torchvision


@pytest.mark.slow
def test_inception_v3_aux_classifier_is_drawn_with_torchvisions_smaller_std() -> None:
    torch.manual_seed(0)
    gm = cnnspec.compile(SPECS / "inception_v3.cnn")
    assert _std(gm.get_submodule("AuxLogits.fc").weight) == pytest.approx(0.001, rel=0.05)
    # The rest of the head keeps the network-wide truncated N(0, 0.1), as torchvision's does
    # (its `stddev` on the head's conv1 sits on the BasicConv2d, which its init loop skips).
    for path in ("AuxLogits.conv1.conv", "fc"):
        assert _std(gm.get_submodule(path).weight) == pytest.approx(0.1, rel=0.05), path
    assert "AuxLogits.fc" not in dict(cnnspec.compile(SPECS / "inception_v3.cnn", aux_logits=False).named_modules())


def test_the_report_lists_each_rule_with_the_layers_it_selects() -> None:
    rules = [
        (r.kind, r.pattern, r.target, r.scheme, r.args, r.layers, r.line)
        for r in cnnspec.check(PATTERNS, zero_last=True).init_rules
    ]
    assert rules == [
        ("conv", None, "weight", "constant", {"value": 0.5}, 7, 11),  # six in the stage, and head
        ("conv", "stage.*.conv2", "weight", "constant", {"value": 2.0}, 3, 12),
        ("conv", "stage.1.conv2", "weight", "constant", {"value": 3.0}, 1, 13),
        ("batchnorm", "stage.*.bn2", "weight", "zeros", {}, 3, 14),
    ]
    # A rule in an `if` that is false is no rule of the network.
    assert [r.pattern for r in cnnspec.check(PATTERNS).init_rules] == [None, "stage.*.conv2", "stage.1.conv2"]
    assert cnnspec.check("network N {\n input: 3 x 8 x 8\n relu\n}\n").init_rules == []


#: (scheme, arguments, dimensions of the tensor it is applied to): some that torch accepts,
#: some that it refuses when `compile` applies them.
AGAINST_TORCH = [
    ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"}, 4),
    ("kaiming_normal", {"mode": "fan_sideways"}, 4),
    ("kaiming_uniform", {"nonlinearity": "swish"}, 2),
    ("kaiming_uniform", {"a": 0.2, "nonlinearity": "leaky_relu"}, 2),
    ("kaiming_normal", {}, 1),
    ("xavier_uniform", {"gain": 2.0}, 1),
    ("xavier_normal", {"gain": 0.5}, 4),
    ("normal", {"std": -0.1}, 4),
    ("normal", {"mean": 1.0, "std": 0.0}, 1),
    ("trunc_normal", {"std": 0.02}, 2),
    ("uniform", {"a": -1.0, "b": 1.0}, 1),
    ("constant", {"value": 0.5}, 1),
]


@pytest.mark.parametrize(("scheme", "args", "dims"), AGAINST_TORCH)
def test_what_check_refuses_statically_is_what_torch_refuses(scheme: str, args: dict, dims: int) -> None:
    """`check` refuses an init exactly when torch.nn.init would fail to apply it (issue 25: before,
    `check` accepted these and `compile` died with an internal error)."""
    refused = bool(inits.argument_problems(scheme, args)) or (scheme in inits.FAN_SCHEMES and dims < 2)
    tensor = torch.empty(*([3] * dims))
    try:
        inits.apply(tensor, scheme, args)
        torch_refused = False
    except (ValueError, RuntimeError):
        torch_refused = True
    assert refused == torch_refused
