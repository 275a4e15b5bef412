"""The Vision Transformer family (specs/vit.cnn) against torchvision 0.29.1.

The encoder block is checked on its own as a twin of torchvision's
EncoderBlock (strict load of its state_dict, equal outputs, the same module
order), so that the part of ViT that holds nearly all of its weights is
pinned independently of the patch embedding and the learned tensors.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import pytest
import torch
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
