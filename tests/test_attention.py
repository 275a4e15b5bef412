"""The attention kinds (cnnspec.layers.attention) through every stage.

Numerics against torchvision's own modules, loaded with strict
load_state_dict; parameters, MACs (against torch's FLOP counter) and saved
activations (against autograd) against what torch does; the receptive field
stated as not defined past a token mixer; the .py export.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import load_generated_class
from test_analysis import measure_saved_bytes
from torchvision.models.swin_transformer import ShiftedWindowAttention
from torchvision.models.vision_transformer import EncoderBlock

import cnnspec
from cnnspec import cli
from cnnspec.api import analyse
from cnnspec.backends.fx import to_graph_module

VIT_ATTENTION = "network N {\n    input: 17 x 64\n    self_attention: attention(4)\n}\n"


def _swin(h: int, w: int, shift: int, c: int = 32, heads: int = 2) -> str:
    return f"network N {{\n    input: {h} x {w} x {c}\n    attn: window_attention({heads}, 7, shift = {shift})\n}}\n"


def test_attention_loads_torchvision_vits_self_attention_and_matches_it() -> None:
    torch.manual_seed(0)
    block = EncoderBlock(num_heads=4, hidden_dim=64, mlp_dim=128, dropout=0.0, attention_dropout=0.0).eval()
    gm = cnnspec.compile(VIT_ATTENTION).eval()
    gm.load_state_dict({f"self_attention.{k}": v for k, v in block.self_attention.state_dict().items()}, strict=True)
    assert list(gm.state_dict()) == [
        "self_attention.in_proj_weight", "self_attention.in_proj_bias",
        "self_attention.out_proj.weight", "self_attention.out_proj.bias",
    ]  # fmt: skip
    x = torch.randn(3, 17, 64)
    with torch.no_grad():
        want = block.self_attention(x, x, x, need_weights=False)[0]
        torch.testing.assert_close(gm(x), want, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("h", "w", "shift"), [(14, 14, 0), (14, 14, 3), (10, 13, 3), (7, 7, 3), (8, 7, 3)])
def test_window_attention_loads_torchvision_swins_attention_and_matches_it(h: int, w: int, shift: int) -> None:
    torch.manual_seed(0)
    ref = ShiftedWindowAttention(32, [7, 7], [shift, shift], 2).eval()
    gm = cnnspec.compile(_swin(h, w, shift)).eval()
    gm.load_state_dict({f"attn.{k}": v for k, v in ref.state_dict().items()}, strict=True)
    x = torch.randn(2, h, w, 32)
    with torch.no_grad():
        torch.testing.assert_close(gm(x), ref(x), rtol=0, atol=1e-5)


@pytest.mark.parametrize("spec", [VIT_ATTENTION, _swin(10, 13, 3), _swin(14, 14, 0)])
def test_parameters_buffers_and_macs_are_torchs(spec: str) -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    c = analyse(spec)
    # In training mode: eval's fused fast path of nn.MultiheadAttention is one op torch does not count.
    gm = to_graph_module(c.graph).train()
    assert c.analysis.trainable_params == sum(p.numel() for p in gm.parameters())
    assert c.analysis.buffers == sum(b.numel() for b in gm.buffers())
    counter = FlopCounterMode(display=False)
    # The math kernel of scaled dot-product attention: matmuls the counter knows (it has no rule for
    # the fused CPU kernel).
    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), counter:
        gm(torch.randn(1, *c.graph.input_shape))
    # torch counts 2 FLOPs per multiply-add of every matmul: the projections, QKᵀ and AV.
    assert cnnspec.check(spec).macs * 2 == counter.get_total_flops()


@pytest.mark.parametrize(
    "spec",
    [
        VIT_ATTENTION,
        VIT_ATTENTION.replace("attention(4)", "attention(4, dropout = 0.1)"),
        _swin(14, 14, 0), _swin(14, 14, 3), _swin(10, 13, 3), _swin(7, 7, 3),
        _swin(10, 13, 3).replace("shift = 3", "shift = 3, dropout = 0.2"),
    ],
)  # fmt: skip
def test_activation_memory_matches_what_autograd_saves_on_cpu(spec: str) -> None:
    c = analyse(spec)
    gm = to_graph_module(c.graph)
    torch.manual_seed(0)
    for batch in (2, 3):  # batch 1 of a one-window map keeps one more copy (docs/analysis.md)
        assert c.analysis.activation_bytes(batch) == measure_saved_bytes(gm, torch.randn(batch, *c.graph.input_shape))


def test_the_receptive_field_is_not_defined_past_a_token_mixer() -> None:
    report = cnnspec.check(_swin(14, 14, 3).replace("    attn:", "    relu\n    attn:").replace("}\n", "    relu\n}\n"))
    fields = {row.path: row.receptive_field for row in report.layers}
    assert fields == {"0": [1, 1], "attn": [], "2": []}
    assert "attention counts its projections" in report.mac_convention
    assert "attention" not in cnnspec.check("network N { input: 3 x 8 x 8\n conv(4, 3) }").mac_convention


def test_the_exported_python_loads_the_same_weights_and_matches(tmp_path: Path) -> None:
    spec = tmp_path / "net.cnn"
    spec.write_text(
        "network N {\n    input: 10 x 13 x 32\n"
        "    a: window_attention(2, 7, shift = 3)\n    b: window_attention(4, 7)\n}\n"
    )
    torch.manual_seed(0)
    gm = cnnspec.compile(spec).eval()
    out = tmp_path / "model.py"
    assert cli.main(["compile", str(spec), "-o", str(out)]) == 0
    model = load_generated_class(out)().eval()
    model.load_state_dict(gm.state_dict(), strict=True)
    x = torch.randn(2, 10, 13, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), gm(x), rtol=0, atol=0)


@pytest.mark.slow  # two exports per spec (~1 min)
@pytest.mark.parametrize("spec", [VIT_ATTENTION, _swin(10, 13, 3)])
def test_pt2_and_onnx_exports_compute_what_the_compiled_module_does(spec: str, tmp_path: Path) -> None:
    import numpy as np
    import onnxruntime

    path = tmp_path / "net.cnn"
    path.write_text(spec)
    torch.manual_seed(0)
    gm = cnnspec.compile(path).eval()
    x = torch.randn(2, *analyse(spec).graph.input_shape)
    with torch.no_grad():
        want = gm(x)
    for suffix in ("pt2", "onnx"):
        torch.manual_seed(0)  # the same weights as gm
        assert cli.main(["compile", str(path), "-o", str(tmp_path / f"net.{suffix}")]) == 0
    program = torch.export.load(tmp_path / "net.pt2")
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), want, rtol=0, atol=1e-5)
    session = onnxruntime.InferenceSession(str(tmp_path / "net.onnx"))
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want.numpy(), rtol=0, atol=1e-4)
