"""Diagrams: DOT structure for the canon, real Graphviz output (SVG as XML, PNG size, PDF), bad input."""

from __future__ import annotations

import itertools
import json
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
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "diagrams"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def diagram(spec: str, net: dict[str, object] | None = None, **kw: object) -> Diagram:
    """The diagram of a spec, with network parameters `net` and to_dot's keywords."""
    c = analyse(SPECS / spec, **(net or {}))
    return to_dot(c.graph, c.analysis, **kw)  # type: ignore[arg-type]


def dot_nodes(dot: str) -> list[str]:
    return re.findall(r"^\s*(n\d+) \[label=", dot, flags=re.M)


def dot_edges(dot: str) -> list[str]:
    """The drawn edges (not the invisible ones that hold branches in order)."""
    return [e.strip() for e in re.findall(r"^\s*n\d+ -> n\d+ \[.*\]$", dot, flags=re.M) if "style=invis" not in e]


def rank_rows(dot: str) -> list[list[str]]:
    """The nodes of each `{rank=same ...}` subgraph, in order."""
    rows = re.findall(r"\{\n\s*rank=same\n((?:\s*n\d+\n)+)\s*\}", dot)
    return [row.split() for row in rows]


def label_of(dot: str, node: str) -> str:
    """The text of a node's label, tags stripped."""
    m = re.search(rf"^\s*{node} \[label=<(.*?)> fillcolor=", dot, flags=re.M)
    assert m, node
    return re.sub(r"<[^>]+>", " ", m.group(1))


def frames(dot: str) -> list[tuple[str, str]]:
    """Each cluster's title (tags stripped, lines joined by " / ") and its attribute line, in order."""
    found = re.findall(r"subgraph cluster_\d+ \{\n\s*([^\n]*)\n\s*t\d+ \[label=<(.*?)> height=", dot)
    out = []
    for attrs, title in found:
        lines = [re.sub(r"<[^>]+>", "", x).strip() for x in re.split(r"<br[^>]*>", title)]
        out.append((" / ".join(x for x in lines if x), attrs))
    return out


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
    ("resnet18.cnn", 30, 70),
    ("resnet50.cnn", 42, 176),
    ("resnet152.cnn", 42, 516),
    ("densenet121.cnn", 37, 486),
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
    # Four stages, each with its first block opened and its folded run drawn as one framed instance.
    assert d.clusters == 12
    titles = [t for t, _ in frames(d.dot)]
    assert "layer3: Stage: Bottleneck ×36" in titles
    assert "Bottleneck ×35 / layer3.1-35 (each like layer3.1) → 1024×14×14" in titles
    assert "Bottleneck ×2 / layer4.1-2 (each like layer4.1) → 2048×7×7" in titles
    # The projection shortcut of each first block, and the identity shortcut of each folded run.
    assert d.skip_edges == 8
    assert "layer3.1.conv1" in d.dot and "layer3.2.conv1" not in d.dot
    skips = [e for e in dot_edges(d.dot) if "style=dashed" in e]
    into = {e.split(" -> ")[1].split()[0] for e in skips}
    assert {label_of(d.dot, n).split()[-3] for n in into} >= {"layer3.1.add", "layer1.1.add"}
    # From the first block's output into the run's add: the identity shortcut, not a projection.
    first_add = next(n for n in dot_nodes(d.dot) if "layer3.0.add" in label_of(d.dot, n))
    rep_add = next(n for n in dot_nodes(d.dot) if "layer3.1.add" in label_of(d.dot, n))
    assert any(e.startswith(f"{first_add} -> {rep_add} ") for e in skips)
    # No edge from the instance drawn back into itself (the instances it stands for are not drawn).
    rep_conv = next(n for n in dot_nodes(d.dot) if "layer3.1.conv1" in label_of(d.dot, n))
    assert [e for e in dot_edges(d.dot) if f"-> {rep_conv} " in e] == [
        e for e in dot_edges(d.dot) if e.startswith(f"{first_add} -> {rep_conv} ")
    ]


def test_cifar_resnet_stage_of_identical_blocks_is_framed_with_its_skip() -> None:
    c = analyse(FIXTURES / "resnet20_cifar.cnn")
    d = to_dot(c.graph, c.analysis)
    found = frames(d.dot)
    assert found[0][0] == "layer1: Stage: BasicBlock ×3 / layer1.0-2 (each like layer1.0) → 16×32×32"
    assert "dashed" not in found[0][1] and "bold" in found[0][1]
    # Each stage's folded run has its identity shortcut; the two projection shortcuts are there too.
    assert d.skip_edges == 5
    assert "layer1.0.conv1" in d.dot and "layer1.1.conv1" not in d.dot


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
    labels = [re.search(r'label="?([^" \]]*)', e).group(1) for e in dot_edges(d.dot)]  # type: ignore[union-attr]
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


def _text_boxes(ops: list[dict]) -> list[tuple[float, float, float, float, str]]:
    """The boxes (x0, y0, x1, y1, text) of the texts in xdot drawing ops, from their font size and width."""
    size, out = 14.0, []
    for op in ops:
        if op["op"] == "F":
            size = op["size"]
        elif op["op"] == "T":
            (x, y), w = op["pt"], op["width"]
            x0 = {"l": x, "c": x - w / 2, "r": x - w}[op["align"]]
            out.append((x0, y - 0.25 * size, x0 + w, y + 0.8 * size, op["text"]))
    return out


def label_overlaps(dot: str) -> list[tuple[str, str]]:
    """(edge label, what it overlaps) for every edge label that overlaps a node's box or a cluster's title,
    in the layout of the real `dot` (-Tjson: node positions and sizes, and where each text is drawn)."""
    done = subprocess.run(["dot", "-Tjson"], input=dot.encode(), capture_output=True, check=True)
    layout = json.loads(done.stdout)
    boxes = []
    for o in layout.get("objects", []):
        if o["name"].startswith("cluster"):
            boxes += _text_boxes(o.get("_ldraw_", []))
        elif "pos" in o:
            x, y = map(float, o["pos"].split(","))
            w, h = float(o["width"]) * 36, float(o["height"]) * 36  # inches, halved, in points
            boxes.append((x - w, y - h, x + w, y + h, o["name"]))
    labels = [b for e in layout.get("edges", []) for k in ("_ldraw_", "_hldraw_", "_tldraw_")
              for b in _text_boxes(e.get(k, []))]  # fmt: skip
    assert labels, "no edge labels drawn"
    return [
        (lab[4], box[4]) for lab in labels for box in boxes
        if lab[0] < box[2] and box[0] < lab[2] and lab[1] < box[3] and box[1] < lab[3]
    ]  # fmt: skip


@needs_dot
@pytest.mark.parametrize(
    ("spec", "kw"),
    [
        ("densenet121.cnn", {}),
        ("resnet152.cnn", {}),
        ("resnet152.cnn", {"depth": 1}),
        ("googlenet.cnn", {}),
        ("resnet152.cnn", {"rankdir": "LR", "params": True}),
        ("densenet121.cnn", {"rankdir": "LR", "params": True}),
        ("googlenet.cnn", {"rankdir": "LR", "params": True}),
        ("resnet20_cifar.cnn", {}),
        ("resnet20_cifar.cnn", {"rankdir": "LR", "params": True}),
    ],
)
def test_edge_labels_overlap_no_node_and_no_cluster_title(spec: str, kw: dict[str, object]) -> None:
    c = analyse(FIXTURES / spec if spec.startswith("resnet20") else SPECS / spec)
    assert label_overlaps(to_dot(c.graph, c.analysis, **kw).dot) == []  # type: ignore[arg-type]


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
    blocks = [(t.split(":")[0], "dashed" in attrs) for t, attrs in frames(d.dot) if ": AuxHead" in t]
    assert blocks == [("aux1", True), ("aux2", True)]
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
    assert len(re.findall(r"\bn\d+ \[label=", frame)) == 4  # the head's three layers and its output node
    assert "c2" not in frame


def test_depth_zero_keeps_the_aux_head_apart() -> None:
    d = diagram("googlenet2014.cnn", {"aux_logits": True}, depth=0)
    assert d.clusters == 2 and d.aux_outputs == 2
    assert re.search(r"<b>AuxHead</b>.*aux1 →", d.dot)


def test_densenet_dense_blocks_fold_into_one_framed_layer_each() -> None:
    d = diagram("densenet121.cnn")
    titles = [t for t, _ in frames(d.dot) if "DenseLayer" in t]
    assert [t.split(" / ")[0] for t in titles] == [
        f"features.denseblock{i}: DenseBlock: DenseLayer ×{n} (channels vary)" for i, n in enumerate((6, 12, 24, 16), 1)
    ]
    assert titles[0].split(" / ")[1:] == [
        "features.denseblock1.denselayer1-6, channels vary: 64×56×56 → 256×56×56",
        "drawn: features.denseblock1.denselayer1",
    ]
    # The layer drawn is the first, with its own shapes; the edge out of the block carries the last one's.
    assert "features.denseblock1.denselayer1.concat → 96×56×56" in d.dot
    concat = next(n for n in dot_nodes(d.dot) if "denselayer1.concat" in label_of(d.dot, n))
    assert any(e.startswith(f"{concat} -> ") and 'label="256×56×56"' in e for e in dot_edges(d.dot))
    assert "channels vary" not in diagram("densenet121.cnn", expand=True).dot


def test_folded_inception_modules_draw_their_branches_side_by_side() -> None:
    d = diagram("inception_v3.cnn")
    titles = [t.split(" / ")[0] for t, _ in frames(d.dot)]
    assert "InceptionA ×2 (channels vary)" in titles and "InceptionC ×2" in titles
    # Every Inception module drawn (eight: three are folded runs of two) holds its branches in one row.
    rows = rank_rows(d.dot)
    assert len(rows) == 8 and all(len(r) >= 3 for r in rows)
    assert "each: conv 1×1, 64" not in d.dot  # the old one-chain description of a folded module


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
    titles = [g for g in nodes if (g.findtext("s:title", namespaces=ns) or "").startswith("t")]
    assert (len(nodes) - len(titles), len(titles), len(clusters)) == (42, 12, 12)


@needs_dot
def test_png_dimensions_and_pdf(tmp_path: Path) -> None:
    png = tmp_path / "g.png"
    assert main(["diagram", str(SPECS / "resnet152.cnn"), "-o", str(png)]) == 0
    head = png.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", head[16:24])
    # Folded ResNet-152 is one readable column, not a 500-layer strip: eight blocks drawn of fifty
    # (each stage's first, and one for its folded run).
    assert 500 < width < 1500 and 2500 < height < 4500
    pdf = tmp_path / "g.pdf"
    assert main(["diagram", str(SPECS / "lenet5.cnn"), "-o", str(pdf), "--rankdir", "LR"]) == 0
    assert pdf.read_bytes()[:5] == b"%PDF-"


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


@needs_dot
def test_compact_resnet152_has_a_column_per_stage_and_fits_a_page(tmp_path: Path) -> None:
    png = tmp_path / "r.png"
    assert main(["diagram", str(SPECS / "resnet152.cnn"), "-o", str(png), "--compact"]) == 0
    width, height = png_size(png)
    # At 110 dpi; on a page of 6.5 by 9 inches (turned), at half size or more: 9 pt type prints at 4.5 pt.
    w, h = width / 110, height / 110
    assert max(min(6.5 / w, 9 / h), min(9 / w, 6.5 / h)) >= 0.45, (width, height)
    d = diagram("resnet152.cnn", compact=True)
    assert (d.nodes, d.skip_edges) == (42, 8)  # as much is drawn as without --compact
    titles = dict(re.findall(r"^\s*(t\d+) \[label=<<b>(layer\d): Stage", d.dot, flags=re.M))
    x = plain_x(d.dot)
    assert sorted(titles, key=lambda t: x[t]) == sorted(titles, key=titles.__getitem__)  # layer1 .. layer4
    assert "continued in column 2 ↓" in d.dot and "from layer1.2, 256×56×56 ↓" in d.dot
    # The shapes are in the nodes, not on the edges; the norms and activations have their short names.
    # No edge shows text; blank labels only hold a rank for the cluster titles (to_dot).
    assert not [e for e in dot_edges(d.dot) if "label=" in e and 'label=" "' not in e]
    assert "conv 1×1, 64 · BN · ReLU" in d.dot and "layer3.1.conv1" not in d.dot


@needs_dot
@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize(("spec", "rows"), [("googlenet.cnn", 9), ("googlenet2014.cnn", 9), ("inception_v3.cnn", 8)])
def test_branches_keep_spec_order_with_aux_heads_and_compact(spec: str, rows: int, compact: bool) -> None:
    d = diagram(spec, {"aux_logits": True}, compact=compact)
    x = plain_x(d.dot)
    assert len(rank_rows(d.dot)) == rows
    for ids in rank_rows(d.dot):
        assert [x[i] for i in ids] == sorted(x[i] for i in ids), ids


@needs_dot
def test_dpi_sets_the_resolution_of_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = str(FIXTURES / "resnet20_cifar.cnn")
    assert main(["diagram", spec, "-o", str(tmp_path / "a.png")]) == 0
    assert main(["diagram", spec, "-o", str(tmp_path / "b.png"), "--dpi", "300"]) == 0
    (w1, h1), (w2, h2) = png_size(tmp_path / "a.png"), png_size(tmp_path / "b.png")
    assert abs(w2 - w1 * 300 / 110) <= 3 and abs(h2 - h1 * 300 / 110) <= 3
    capsys.readouterr()
    assert main(["diagram", spec, "-o", str(tmp_path / "c.svg"), "--dpi", "300"]) == 2
    assert "--dpi applies to .png output only" in capsys.readouterr().err
    assert main(["diagram", spec, "-o", str(tmp_path / "d.png"), "--dpi", "5"]) == 2
    assert "--dpi expects a number from 30 to 1200, got 5" in capsys.readouterr().err
    assert not (tmp_path / "c.svg").exists() and not (tmp_path / "d.png").exists()


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


def test_swin_blocks_alternating_their_shift_fold_into_one_node_per_stage() -> None:
    d = diagram("swin_t.cnn")
    folds = re.findall(r"<b>features\.\d: (SwinTransformerBlock ×\d+ \([a-z ]+ vary\))</b>", d.dot)
    assert folds == [f"SwinTransformerBlock ×{n} (rates and shifts vary)" for n in (2, 2, 6, 2)]
    assert "shifts vary" not in diagram("swin_t.cnn", expand=True).dot
