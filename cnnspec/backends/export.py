"""Writing a compiled network out: standalone Python source, a torch.export program, or ONNX.

ExportError (from constructors.py) is what every writer raises for a network its format cannot hold.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnnspec.backends.constructors import ExportError
from cnnspec.backends.pysource import python_source
from cnnspec.ir import Graph

if TYPE_CHECKING:
    import torch.fx


def write_python(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write the standalone Python source of a network: a class per block, as a person writes PyTorch."""
    path.write_text(python_source(gm, graph))


def write_pt2(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write a torch.export ExportedProgram (eval mode, batch dimension dynamic)."""
    import torch

    gm.eval()
    example = (torch.randn(2, *graph.input_shape),)
    batch = torch.export.Dim("batch", min=1, max=65536)
    program = torch.export.export(gm, example, dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


#: ONNX keeps a model in one protobuf, which cannot exceed 2 GiB.
ONNX_MAX_BYTES = 2**31 - 1


def onnx_refusal(graph: Graph) -> str | None:
    """Why ONNX cannot hold the network, as a message pointing at the spec, or None.

    ONNX has no adaptive max pooling: torch's exporter writes it as a max pool
    only where the output size divides the input size (global pooling
    included), and fails on any other.
    """
    for node in graph.layers():
        if node.kind == "adaptive_maxpool":
            (_, h, w), (_, oh, ow) = node.in_shapes[0], node.out_shape
            if h % oh or w % ow:
                return (
                    f"{node.span}: adaptive_maxpool {node.path!r} pools {h}×{w} to {oh}×{ow} (option size): ONNX "
                    f"has no adaptive max pooling, and torch's exporter writes one only where the output size "
                    f"divides the input size; choose a size that divides {h}×{w}, or export to .pt2 or .py"
                )
    return None


def write_onnx(gm: torch.fx.GraphModule, graph: Graph, path: Path) -> None:
    """Write an ONNX model through torch's exporter (torch.export based; eval mode, batch dimension dynamic).

    The graph is the eval-mode one, so a network with auxiliary outputs exports
    its main output only. The input is named "x", the output "y"; weights are
    stored inside the file. onnxscript must be installed (torch's exporter
    needs it). Raises ExportError for a network whose weights exceed ONNX's 2 GiB,
    one with a layer option ONNX cannot express (onnx_refusal), or one torch's
    exporter fails on; nothing is written then.
    """
    import torch

    size = sum(t.numel() * t.element_size() for t in [*gm.parameters(), *gm.buffers()])
    if size > ONNX_MAX_BYTES:
        raise ExportError(f"{graph.network} holds {size / 2**30:.1f} GiB of weights; an ONNX file holds at most 2 GiB")
    refusal = onnx_refusal(graph)
    if refusal is not None:
        raise ExportError(refusal)
    was_training = gm.training
    gm.eval()
    try:
        example = (torch.randn(2, *graph.input_shape),)
        batch = torch.export.Dim("batch", min=1, max=65536)
        try:
            program = torch.onnx.export(
                gm,
                example,
                dynamo=True,
                dynamic_shapes=({0: batch},),
                input_names=["x"],
                output_names=["y"],
                verbose=False,
            )
        except Exception as e:  # (the exporter raises many kinds; each means "no file")
            reason = next((line for line in str(e).splitlines() if "No ONNX function" in line), type(e).__name__)
            raise ExportError(f"torch's ONNX exporter cannot convert {graph.network}: {reason.strip()}") from e
        assert program is not None
        program.save(str(path), external_data=False)
    finally:
        gm.train(was_training)
