"""Diagrams: DOT structure for the canon, real Graphviz output (SVG as XML, PNG size, PDF), bad input."""

from __future__ import annotations

import itertools
import re
import shutil
import struct
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from cnnspec.api import analyse
from cnnspec.backends.diagram import AUX_COLOUR, Diagram, to_dot
from cnnspec.cli import main

SPECS = Path(__file__).resolve().parent.parent / "specs"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def diagram(spec: str, net: dict[str, object] | None = None, **kw: object) -> Diagram:
    """The diagram of a spec, with network parameters `net` and to_dot's keywords."""
    c = analyse(SPECS / spec, **(net or {}))
    return to_dot(c.graph, c.analysis, **kw)  # type: ignore[arg-type]


def dot_nodes(dot: str) -> list[str]:
    return re.findall(r"^\s*(n\d+) \[label=", dot, flags=re.M)


def dot_edges(dot: str) -> list[str]:
    """The drawn edges (not the invisible ones that hold branches in order)."""
    return [e for e in re.findall(r"^\s*n\d+ -> n\d+ \[.*\]$", dot, flags=re.M) if "style=invis" not in e]


def rank_rows(dot: str) -> list[list[str]]:
    """The nodes of each `{rank=same ...}` subgraph, in order."""
    rows = re.findall(r"\{\n\s*rank=same\n((?:\s*n\d+\n)+)\s*\}", dot)
    return [row.split() for row in rows]


def label_of(dot: str, node: str) -> str:
    """The text of a node's label, tags stripped."""
    m = re.search(rf"^\s*{node} \[label=<(.*?)> fillcolor=", dot, flags=re.M)
    assert m, node
    return re.sub(r"<[^>]+>", " ", m.group(1))


def plain_x(dot: str) -> dict[str, float]:
    """Where Graphviz puts each node: x of its centre, from `dot -Tplain`."""
    done = subprocess.run(["dot", "-Tplain"], input=dot.encode(), capture_output=True, check=True)
    return {p[1]: float(p[2]) for p in (ln.split() for ln in done.stdout.decode().splitlines()) if p[0] == "node"}


#: (spec, folded nodes, expanded nodes) -- expanded is every layer plus the input.
COUNTS = [
    ("lenet5.cnn", 9, 13),
    ("alexnet.cnn", 16, 23),
    ("vgg16.cnn", 26, 41),
    ("googlenet.cnn", 84, 198),
    ("resnet18.cnn", 28, 70),
    ("resnet50.cnn", 30, 176),
    ("resnet152.cnn", 30, 516),
    ("densenet121.cnn", 21, 486),
]


@pytest.mark.parametrize(("spec", "folded", "expanded"), COUNTS)
def test_node_counts_folded_and_expanded(spec: str, folded: int, expanded: int) -> None:
    c = analyse(SPECS / spec)
    d = to_dot(c.graph, c.analysis)
    e = to_dot(c.graph, c.analysis, expand=True)
    assert (d.nodes, e.nodes) == (folded, expanded)
    assert len(dot_nodes(d.dot)) == d.nodes and len(dot_nodes(e.dot)) == e.nodes
    assert e.nodes == len(c.graph.nodes)


def test_resnet152_folded_clusters_skips_and_fold_nodes() -> None:
    d = diagram("resnet152.cnn")
    assert d.clusters == 8  # four stages, each with its first block opened
    assert d.skip_edges == 4  # the projection shortcut of each opened first block
    assert "Bottleneck ×35" in d.dot and "Bottleneck ×7" in d.dot
    assert d.dot.count("peripheries=2") == 4
    assert "layer3: Stage: Bottleneck ×36" in d.dot


def test_resnet152_expanded_has_every_block_and_every_shortcut() -> None:
    d = diagram("resnet152.cnn", expand=True)
    assert d.clusters == 4 + 50 + 4  # stages, blocks, downsample groups
    assert d.skip_edges == 50
    skips = [e for e in dot_edges(d.dot) if "style=dashed" in e]
    assert len(skips) == 50 and all("constraint=false" in e for e in skips)
    assert "×35" not in d.dot


def test_edges_carry_the_shapes_of_the_ir() -> None:
    c = analyse(SPECS / "alexnet.cnn")
    d = to_dot(c.graph, c.analysis, expand=True)
    labels = [re.search(r'xlabel="?([^" \]]*)', e).group(1) for e in dot_edges(d.dot)]  # type: ignore[union-attr]
    want = ["×".join(map(str, c.graph.nodes[n.inputs[0]].out_shape)) for n in c.graph.layers()]
    assert labels == want


def test_googlenet_branches_sit_in_spec_order() -> None:
    d = diagram("googlenet.cnn")
    # Nine Inception modules framed; their branches are columns held in one row, not clusters.
    assert d.clusters == 9
    rows = rank_rows(d.dot)
    assert len(rows) == 9
    for ids in rows:
        paths = [re.search(r"\.(branch\d)\b", label_of(d.dot, n)).group(1) for n in ids]  # type: ignore[union-attr]
        assert paths == ["branch1", "branch2", "branch3", "branch4"]
        assert all(f"{a} -> {z} [style=invis]" in d.dot for a, z in itertools.pairwise(ids))
    # Every inception's concat has four incoming edges.
    concats = re.findall(r"^\s*(n\d+) \[label=<<b>concat</b>", d.dot, flags=re.M)
    assert len(concats) == 9
    for n in concats:
        assert len(re.findall(rf"-> {n} ", d.dot)) == 4
    assert d.skip_edges == 0


@needs_dot
def test_googlenet_branches_are_drawn_left_to_right() -> None:
    for spec in ("googlenet.cnn", "googlenet2014.cnn"):
        d = diagram(spec)
        x = plain_x(d.dot)
        rows = rank_rows(d.dot)
        assert len(rows) == 9
        for ids in rows:
            xs = [x[i] for i in ids]
            assert xs == sorted(xs), (spec, ids, xs)


def test_depth_collapses_groups_into_single_nodes() -> None:
    d = diagram("googlenet.cnn", depth=0)
    assert d.clusters == 0
    assert d.nodes == 21  # input + the 20 rows of the top level
    assert "Inception" in d.dot


def test_aux_heads_are_framed_apart_with_their_own_output_nodes() -> None:
    plain = diagram("googlenet2014.cnn")
    d = diagram("googlenet2014.cnn", {"aux_logits": True})
    assert "aux" not in plain.dot and plain.aux_outputs == 0
    # Each head: avgpool, conv·relu, flatten, linear·relu, dropout, linear; then the aux and main outputs.
    assert (d.aux_outputs, d.nodes) == (2, plain.nodes + 2 * 6 + 2 + 1)
    assert d.clusters == plain.clusters + 2
    assert "aux1: AuxHead (aux head, ×0.3)" in d.dot and "aux2: AuxHead (aux head, ×0.3)" in d.dot
    outputs = re.findall(r"^\s*(n\d+) \[label=<<b>(aux\d output 1000|output 1000)</b>", d.dot, flags=re.M)
    assert [t for _, t in outputs] == ["aux1 output 1000", "aux2 output 1000", "output 1000"]
    assert "loss weight 0.3, training only" in d.dot and "main output" in d.dot
    # The aux frames are dashed and hold their head's layers and the output node.
    blocks = re.findall(r"subgraph (cluster_\d+) \{\n[^\n]*label=<<b>(aux\d): AuxHead[^\n]*style=\"([^\"]*)\"", d.dot)
    assert [(name, "dashed" in style) for _, name, style in blocks] == [("aux1", True), ("aux2", True)]
    # Edges into a head and to its output are drawn in the aux colour; the main path's are not.
    aux_edges = [e for e in dot_edges(d.dot) if AUX_COLOUR in e]
    assert len(aux_edges) == 2 * (6 + 1)
    fc_to_output = [e for e in dot_edges(d.dot) if e.split(" -> ")[1].startswith(outputs[2][0] + " ")]
    assert len(fc_to_output) == 1 and AUX_COLOUR not in fc_to_output[0]


def test_unnamed_aux_head_gets_a_frame_of_its_own() -> None:
    text = """network N { input: 3 x 16 x 16
  c1: conv(8, 3, padding = 1); relu
  aux(weight = 0.5) { adaptive_avgpool(1); flatten; linear(10) }
  c2: conv(8, 3); adaptive_avgpool(1); flatten; fc: linear(10) }"""
    c = analyse(text)
    d = to_dot(c.graph, c.analysis)
    assert d.clusters == 1 and d.aux_outputs == 1
    assert "aux1: aux head (×0.5)" in d.dot and "aux1 output 10" in d.dot
    frame = d.dot[d.dot.index("subgraph cluster_1") :]
    frame = frame[: frame.index("\n\t}")]
    assert frame.count("[label=") == 4  # the head's three layers and its output node
    assert "c2" not in frame


def test_depth_zero_keeps_the_aux_head_apart() -> None:
    d = diagram("googlenet2014.cnn", {"aux_logits": True}, depth=0)
    assert d.clusters == 2 and d.aux_outputs == 2
    assert re.search(r"<b>AuxHead</b>.*aux1 →", d.dot)


def test_densenet_dense_blocks_fold_into_one_node_each() -> None:
    d = diagram("densenet121.cnn")
    folds = re.findall(r"<b>(DenseLayer ×\d+ \(channels vary\))</b>", d.dot)
    assert folds == [f"DenseLayer ×{n} (channels vary)" for n in (6, 12, 24, 16)]
    assert "features.denseblock1.denselayer1-6: 64×56×56 → 256×56×56" in d.dot
    assert "each: batchnorm · relu · conv 1×1, 128 · batchnorm · relu ·" in d.dot
    assert d.dot.count("peripheries=2") == 4
    assert "channels vary" not in diagram("densenet121.cnn", expand=True).dot


def test_efficientnet_blocks_differing_in_drop_rate_fold_into_one_node_each() -> None:
    d = diagram("efficientnet_b0.cnn")
    folds = re.findall(r"<b>(MBConv ×\d+ \(rates vary\))</b>", d.dot)
    assert folds == ["MBConv ×2 (rates vary)", "MBConv ×2 (rates vary)", "MBConv ×3 (rates vary)"]
    # The channels are the same in each, so one instance stands for the others.
    assert "features.6.1-3 (each like features.6.1) → 192×7×7" in d.dot
    assert "rates vary" not in diagram("efficientnet_b0.cnn", expand=True).dot


def test_params_are_optional() -> None:
    assert "params" not in diagram("lenet5.cnn").dot
    assert "61,706 params" not in diagram("lenet5.cnn", params=True).dot
    assert "2,416 params" in diagram("lenet5.cnn", params=True).dot  # conv2: 16·6·25 + 16


def test_rankdir() -> None:
    assert "rankdir=LR" in diagram("lenet5.cnn", rankdir="LR").dot
    with pytest.raises(ValueError):
        diagram("lenet5.cnn", rankdir="XY")


@needs_dot
def test_svg_is_xml_with_every_node(tmp_path: Path) -> None:
    out = tmp_path / "resnet152.svg"
    assert main(["diagram", str(SPECS / "resnet152.cnn"), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert root.tag.endswith("svg")
    ns = {"s": "http://www.w3.org/2000/svg"}
    nodes = [g for g in root.iterfind(".//s:g", ns) if g.get("class") == "node"]
    clusters = [g for g in root.iterfind(".//s:g", ns) if g.get("class") == "cluster"]
    assert (len(nodes), len(clusters)) == (30, 8)


@needs_dot
def test_png_dimensions_and_pdf(tmp_path: Path) -> None:
    png = tmp_path / "g.png"
    assert main(["diagram", str(SPECS / "resnet152.cnn"), "-o", str(png)]) == 0
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    # Folded ResNet-152 is one readable column, not a 500-layer strip.
    assert 500 < width < 1500 and 1500 < height < 3500
    pdf = tmp_path / "g.pdf"
    assert main(["diagram", str(SPECS / "lenet5.cnn"), "-o", str(pdf), "--rankdir", "LR"]) == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_dot_output_needs_no_graphviz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "lenet.dot"
    assert main(["diagram", str(SPECS / "lenet5.cnn"), "-o", str(out)]) == 0
    assert out.read_text().startswith("digraph LeNet5 {")


def test_missing_dot_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["diagram", str(SPECS / "lenet5.cnn"), "-o", str(tmp_path / "x.svg")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "apt-get install graphviz" in err and ".dot" in err
    assert not (tmp_path / "x.svg").exists()


def test_bad_suffix_unwritable_path_and_no_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(SPECS / "lenet5.cnn")
    assert main(["diagram", spec, "-o", str(tmp_path / "x.jpg")]) == 2
    assert ".svg, .png, .pdf or .dot" in capsys.readouterr().err
    assert main(["diagram", spec, "-o", str(tmp_path / "missing" / "x.dot")]) == 2
    assert "does not exist" in capsys.readouterr().err
    out = tmp_path / "x.dot"
    out.write_text("keep me")
    assert main(["diagram", spec, "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main(["diagram", spec, "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("digraph")


@needs_dot
def test_gallery_draws_what_checks_and_lists_the_rest(tmp_path: Path) -> None:
    from cnnspec.commands.gallery import main as gallery

    specs = tmp_path / "specs"
    specs.mkdir()
    for name in ("lenet5.cnn", "resnet.cnn", "resnet18.cnn"):
        (specs / name).write_text((SPECS / name).read_text())
    out = tmp_path / "gallery"
    assert gallery(["--specs", str(specs), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "index.md",
        "lenet5.md",
        "lenet5.svg",
        "lenet5.txt",
        "resnet.md",
        "resnet18.md",
        "resnet18.svg",
        "resnet18.txt",
    ]
    index = (out / "index.md").read_text()
    assert "`resnet.cnn`: network parameter `layers` has no value" in index
    assert "](resnet18.svg)" in index
    assert "[resnet18](resnet18.md)" in index and "has no value ([source](resnet.md))" in index
    page = (out / "resnet18.md").read_text()
    assert "![resnet18](resnet18.svg)" in page and '--8<-- "resnet18.txt"' in page and '--8<-- "resnet18.cnn"' in page
    assert "[resnet.cnn](resnet.md)" in page  # its import
    assert "svg" not in (out / "resnet.md").read_text()  # not drawn: only its source
    ET.parse(out / "resnet18.svg")


@pytest.mark.parametrize("command", [["diagram", "{spec}", "-o", "{out}"], ["layers"], ["check", "{spec}"]])
def test_diagram_layers_and_check_import_neither_torch_nor_the_fx_backend(command: list[str], tmp_path: Path) -> None:
    import sys

    args = [a.format(spec=SPECS / "googlenet.cnn", out=tmp_path / "g.dot") for a in command]
    code = (
        f"import sys; from cnnspec.cli import main; main({args!r}); "
        "bad = [m for m in ('torch', 'cnnspec.backends.fx') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
