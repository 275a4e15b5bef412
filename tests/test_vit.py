"""The Vision Transformer family (specs/vit.cnn) against torchvision 0.29.1.

The encoder block is checked on its own as a twin of torchvision's
EncoderBlock (strict load of its state_dict, equal outputs, the same module
order), so that the part of ViT that holds nearly all of its weights is
pinned independently of the patch embedding and the learned tensors.
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision.models as tvm
from torch import nn
from torchvision.models.vision_transformer import EncoderBlock

import cnnspec

SPECS = Path(__file__).resolve().parent.parent / "specs"


def _encoder_spec(tmp_path: Path, *, tokens: int, hidden: int, heads: int, mlp: int, layers: int) -> Path:
    """A network of `layers` of vit.cnn's EncoderBlock under torchvision's path encoder.layers."""
    spec = tmp_path / "encoder.cnn"
    spec.write_text(
        'import "vit.cnn"\n'
        f"network Encoder {{\n    input: {tokens} x {hidden}\n"
        f'    encoder {{ layers {{ "encoder_layer_{{0}}": EncoderBlock({heads}, {hidden}, {mlp}) * {layers} }} }}\n}}\n'
    )
    return spec


def _torchvision_encoder(*, hidden: int, heads: int, mlp: int, layers: int) -> nn.Module:
    """torchvision's encoder layers under the same path (Encoder.layers is a Sequential of EncoderBlocks)."""
    blocks = OrderedDict(
        (f"encoder_layer_{i}", EncoderBlock(heads, hidden, mlp, dropout=0.0, attention_dropout=0.0))
        for i in range(layers)
    )
    root, encoder = nn.Module(), nn.Module()
    encoder.layers = nn.Sequential(blocks)
    root.encoder = encoder
    return root


@pytest.mark.parametrize(
    ("tokens", "hidden", "heads", "mlp", "layers"),
    [pytest.param(17, 64, 4, 128, 3, id="small"), pytest.param(197, 768, 12, 3072, 2, id="vit_b_16-width")],
)
def test_encoder_block_is_torchvisions(
    tmp_path: Path, tokens: int, hidden: int, heads: int, mlp: int, layers: int
) -> None:
    spec = _encoder_spec(tmp_path, tokens=tokens, hidden=hidden, heads=heads, mlp=mlp, layers=layers)
    torch.manual_seed(0)
    ours = cnnspec.compile(spec, path=[SPECS]).eval()
    ref = _torchvision_encoder(hidden=hidden, heads=heads, mlp=mlp, layers=layers).eval()
    # Layer norms away from their identity start, so that parity tests more than their defaults.
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    ours.load_state_dict(ref.state_dict(), strict=True)
    report = cnnspec.check(spec, path=[SPECS])
    assert report.total_params == sum(p.numel() for p in ref.parameters())
    x = torch.randn(2, tokens, hidden)
    with torch.no_grad():
        got, want = ours(x), ref.encoder.layers(x)
    assert (got - want).abs().max().item() <= 1e-5


def test_encoder_block_macs_count_projections_and_both_matmuls(tmp_path: Path) -> None:
    """Per block: QKV and output projections, QKᵀ and AV (N·N·D each), the MLP's two linear layers."""
    n, d, mlp = 197, 768, 3072
    report = cnnspec.check(_encoder_spec(tmp_path, tokens=n, hidden=d, heads=12, mlp=mlp, layers=1), path=[SPECS])
    assert report.macs == n * d * 3 * d + n * d * d + 2 * n * n * d + 2 * n * d * mlp


# ------------------------------------------------------------ the networks


@dataclass(frozen=True)
class Variant:
    """One stock ViT: its binding, torchvision's builder and weights enum, its published size."""

    spec: str
    builder: Callable[..., nn.Module]
    weights: Any
    params: int
    slow: bool = True


VARIANTS = [
    Variant("vit_b_16", tvm.vit_b_16, tvm.ViT_B_16_Weights.IMAGENET1K_V1, 86_567_656),
    Variant("vit_b_32", tvm.vit_b_32, tvm.ViT_B_32_Weights.IMAGENET1K_V1, 88_224_232),
    Variant("vit_l_16", tvm.vit_l_16, tvm.ViT_L_16_Weights.IMAGENET1K_V1, 304_326_632),
]


def _variants(*, slow_marks: bool) -> list[Any]:
    return [pytest.param(v, id=v.spec, marks=[pytest.mark.slow] if slow_marks and v.slow else []) for v in VARIANTS]


@pytest.mark.parametrize("variant", _variants(slow_marks=False))
def test_parameter_count_and_macs_are_torchvisions(variant: Variant) -> None:
    """Static figures only (nothing is built): the parameters to the unit, the MACs as torchvision publishes them.

    torchvision's "GFLOPS" are GMACs counted as cnnspec counts them (attention's QKᵀ and AV included):
    17.564 for vit_b_16.
    """
    report = cnnspec.check(SPECS / f"{variant.spec}.cnn")
    assert report.total_params == variant.params == variant.weights.meta["num_params"]
    assert round(report.macs / 1e9, 3) == variant.weights.meta["_ops"]
    assert report.input_shape == [3, 224, 224] and report.output_shape == [1000]


@pytest.mark.parametrize("variant", _variants(slow_marks=False))
def test_module_and_state_dict_order_is_torchvisions(variant: Variant) -> None:
    """Built on the meta device: the order, and a strict load of torchvision's state_dict, need no weights."""
    with torch.device("meta"):
        ours = cnnspec.compile(SPECS / f"{variant.spec}.cnn")
        ref = variant.builder()
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    assert list(ours.state_dict()) == list(ref.state_dict())
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)


def _randomise(model: nn.Module, seed: int = 0) -> None:
    """Layer norms away from their identity start; class token, position embedding and head away from 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.LayerNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
        for name, p in model.named_parameters():
            if name in ("class_token", "encoder.pos_embedding") or name.startswith("heads."):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def _assert_twin(ours: nn.Module, ref: nn.Module, resolution: int) -> float:
    _randomise(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval()
    ref.eval()
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = ours(x), ref(x)
    assert isinstance(got, torch.Tensor) and got.shape == want.shape
    diff = (got - want).abs().max().item()
    assert diff <= 1e-5
    return diff


# One forward parity at full size for the family: vit_b_32 and vit_l_16 run the same vit.cnn with other
# numbers, and their twin claim rests on the parameter count, MACs and strict load checked above.
@pytest.mark.parametrize("variant", [p for p in _variants(slow_marks=True) if p.id == "vit_b_16"])
def test_strict_load_and_eval_parity(variant: Variant) -> None:
    torch.manual_seed(0)
    ours = cnnspec.compile(SPECS / f"{variant.spec}.cnn")
    ref = variant.builder()
    diff = _assert_twin(ours, ref, 224)
    print(f"\n{variant.spec}: max |output difference| {diff:.3g}")


def test_a_small_vision_transformer_is_torchvisions() -> None:
    """The family file with its parameters set, against torchvision's VisionTransformer with the same: fast."""
    from torchvision.models.vision_transformer import VisionTransformer

    kw = {"image_size": 32, "patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
    torch.manual_seed(0)
    ours = cnnspec.compile(SPECS / "vit.cnn", num_classes=10, **kw)
    ref = VisionTransformer(num_classes=10, **kw)
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in ref.named_modules()]
    _assert_twin(ours, ref, 32)


# ------------------------------------------------------------ training


@pytest.mark.slow
def test_small_vit_trains_on_the_digits(tmp_path: Path) -> None:
    """specs/vit_digits.cnn with `cnnspec train --data digits`: above 90% validation top-1.

    AdamW at an effective 0.002 (base 0.008 at batch 64) with weight decay 0.05, 20 epochs;
    docs/families/vit.md gives the command, the figure and the time.
    """
    with redirect_stdout(io.StringIO()):
        result = cnnspec.train(
            str(SPECS / "vit_digits.cnn"),
            data="digits",
            out=tmp_path / "run",
            epochs=20,
            optimizer="adamw",
            base_lr=0.008,
            weight_decay=0.05,
            progress="off",
        )
    assert result.final["val_top1"] >= 0.90
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"] / 5
