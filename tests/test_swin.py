"""The Swin family (specs/swin.cnn) against torchvision 0.29.1's swin_t and swin_s.

Parameter counts from the static check for both; torchvision's state_dict
loads with strict=True into both (swin_s's on the meta device) and swin_t's
outputs agree within 1e-5 in eval mode at 224: swin_s is the same swin.cnn
with other numbers, so one forward parity at full size proves the family. The reference's layer
norms and relative-position bias tables are randomised first, so parity
tests more than freshly initialised normalisation. Module order is
torchvision's except where the language cannot say it; those differences are
listed exactly here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision.models as tvm
from torch import nn

import cnnspec
from cnnspec.layers.nn import StochasticDepth

SPECS = Path(__file__).resolve().parent.parent / "specs"

#: (stock spec, torchvision builder, published parameters, family arguments)
STOCK = {
    "swin_t": (tvm.swin_t, 28_288_354, {"depths": [2, 2, 6, 2], "stochastic_depth_prob": 0.2}),
    "swin_s": (tvm.swin_s, 49_606_258, {"depths": [2, 2, 18, 2], "stochastic_depth_prob": 0.3}),
}


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial layer norms (weight and bias) and relative-position bias tables."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
            table = getattr(m, "relative_position_bias_table", None)
            if isinstance(table, nn.Parameter):
                table.copy_(torch.randn(table.shape, generator=g))


@pytest.fixture(scope="module")
def swin_t() -> tuple[nn.Module, nn.Module]:
    """swin_t compiled and torchvision's, built once for the tests that only read them."""
    torch.manual_seed(0)
    return cnnspec.compile(SPECS / "swin_t.cnn"), tvm.swin_t()


@pytest.mark.parametrize("name", sorted(STOCK))
def test_parameter_counts_are_torchvisions_from_one_family_file(name: str) -> None:
    _, params, family_args = STOCK[name]
    text = (SPECS / f"{name}.cnn").read_text()
    assert 'import "swin.cnn"' in text and "block " not in text
    stock = cnnspec.check(SPECS / f"{name}.cnn")
    family = cnnspec.check(SPECS / "swin.cnn", **family_args)
    assert stock.total_params == family.total_params == params
    assert stock.input_shape == [3, 224, 224] and stock.output_shape == [1000]


def test_swin_s_loads_torchvisions_state_dict_strictly() -> None:
    """Built on the meta device: names and shapes need no weights (swin_t's forward parity is below)."""
    build, params, _ = STOCK["swin_s"]
    with torch.device("meta"):
        ours, ref = cnnspec.compile(SPECS / "swin_s.cnn"), build()
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == params
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)


def test_strict_load_and_eval_parity(swin_t: tuple[nn.Module, nn.Module]) -> None:
    _, params, _ = STOCK["swin_t"]
    ours, ref = swin_t
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters()) == params
    _randomise(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        got, want = ours(x), ref(x)
    assert got.shape == want.shape == (2, 1000)
    assert (got - want).abs().max().item() <= 1e-5


def test_module_order_is_torchvisions_but_for_what_the_language_cannot_say(
    swin_t: tuple[nn.Module, nn.Module],
) -> None:
    ours, ref = swin_t
    a, b = [n for n, _ in ours.named_modules()], [n for n, _ in ref.named_modules()]
    # torchvision's Permute and Flatten are modules; here they are functions with no state.
    assert sorted(set(b) - set(a)) == ["features.0.1", "flatten", "permute"]
    # Modules without state that torchvision does not name: PatchMerging's eight slices (x[..., 0::2, 1::2, :]
    # is a function call there) and the second stochastic depth of each block (torchvision calls its one
    # StochasticDepth module twice, a spec names each use).
    extra = set(a) - set(b)
    merging = {f"features.{m}.{i}" for m in (2, 4, 6) for i in range(8)}
    second_sd = {f"features.{s}.{j}.5" for s, n in ((1, 2), (3, 2), (5, 6), (7, 2)) for j in range(n)}
    assert extra == merging | second_sd
    assert all(type(ours.get_submodule(p)) is StochasticDepth for p in second_sd)
    # PatchMerging defines reduction before norm but applies norm first; a spec names modules in the order
    # it applies them. Every other module comes in torchvision's order.
    common = [n for n in b if n in set(a)]
    swapped = {f"features.{m}.{k}" for m in (2, 4, 6) for k in ("norm", "reduction")}
    assert [n for n in a if n in set(b) and n not in swapped] == [n for n in common if n not in swapped]
    assert [n for n in a if n in swapped] == [f"features.{m}.{k}" for m in (2, 4, 6) for k in ("norm", "reduction")]
    assert [n for n in b if n in swapped] == [f"features.{m}.{k}" for m in (2, 4, 6) for k in ("reduction", "norm")]


def test_windows_shift_every_other_block_and_stochastic_depth_grows_linearly(
    swin_t: tuple[nn.Module, nn.Module],
) -> None:
    ours, ref = swin_t
    got = {n: (m.window, m.shift) for n, m in ours.named_modules() if type(m).__name__ == "WindowAttention"}
    want = {
        n: (m.window_size[0], m.shift_size[0])
        for n, m in ref.named_modules()
        if type(m).__name__ == "ShiftedWindowAttention"
    }
    assert got == want and len(got) == 12
    sd = {n: m.p for n, m in ours.named_modules() if isinstance(m, StochasticDepth) and n.endswith("stochastic_depth")}
    ref_sd = {n: m.p for n, m in ref.named_modules() if type(m).__name__ == "StochasticDepth"}
    assert sd == pytest.approx(ref_sd) and max(sd.values()) == pytest.approx(0.2)


def test_patch_merging_pads_an_odd_map_as_torchvision() -> None:
    from torchvision.models.swin_transformer import PatchMerging

    text = 'import "swin.cnn"\nnetwork N { input: 8 x 7 x 5\n    permute([0, 2, 3, 1]); m: PatchMerging }\n'
    ours, ref = cnnspec.compile(text), PatchMerging(8)
    assert cnnspec.check(text).output_shape == [4, 3, 16]
    _randomise(ref)
    ours.load_state_dict({f"m.{k}": v for k, v in ref.state_dict().items()}, strict=True)
    x = torch.randn(2, 8, 7, 5)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x.permute(0, 2, 3, 1)), rtol=0, atol=1e-6)
