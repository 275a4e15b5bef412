"""Regenerate docs/gallery/: a folded SVG diagram and the summary of every spec, and an index page.

    python -m cnnspec.commands.gallery [--specs specs] [--out docs/gallery]

Every .cnn file whose network elaborates with its defaults gets <name>.svg
and <name>.txt; family files whose networks need parameters (resnet.cnn,
vgg.cnn) and files that fail are listed in the index with the reason. Every
spec also gets a page <name>.md for the documentation site (mkdocs.yml): the
diagram, the summary and the highlighted source, the last two included from
their files when the site is built, so the pages stay right while the
summaries and specs change.
VARIANTS adds drawings with parameters set (GoogLeNet with its auxiliary
classifiers, as <name>-aux.svg). The gallery is regenerated as a whole,
so its files are overwritten.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from cnnspec.diagnostics import SpecError

#: Spec file -> (name suffix, network parameters) of extra drawings: features the defaults leave off.
VARIANTS: dict[str, list[tuple[str, dict[str, object]]]] = {
    "googlenet.cnn": [("aux", {"aux_logits": True})],
    "googlenet2014.cnn": [("aux", {"aux_logits": True})],
}


@dataclass
class Entry:
    """One spec file's outcome: what it drew, or why it was skipped."""

    spec: str
    network: str = ""
    params: int = 0
    macs: int = 0
    layers: int = 0
    nodes: int = 0
    skipped: str = ""
    #: The file names' stem: the spec's, or with a variant's suffix.
    stem: str = ""
    #: The spec's file name, and the files it imports.
    source: str = ""
    imports: tuple[str, ...] = ()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build_one(spec: Path, out: Path, params: dict[str, object] | None = None, suffix: str = "") -> Entry:
    """Draw one spec and write its summary; an Entry with `skipped` set when it cannot be.

    params: network parameters to set; suffix: added to the file names ("googlenet-aux").
    """
    from cnnspec.api import analyse
    from cnnspec.backends.diagram import render, to_dot
    from cnnspec.views.report import build_report
    from cnnspec.views.summary import format_report

    label = spec.name + (" " + " ".join(f"--set {k}={str(v).lower()}" for k, v in params.items()) if params else "")
    imports = tuple(re.findall(r'^\s*import\s+"([^"]+)"', spec.read_text(encoding="utf-8"), re.MULTILINE))
    entry = Entry(label, source=spec.name, imports=imports)
    stem = spec.stem + (f"-{suffix}" if suffix else "")
    try:
        checked = analyse(spec, **(params or {}))
    except SpecError as e:
        first = e.diagnostics[0].message if e.diagnostics else str(e)
        entry.skipped = first
        return entry
    report = build_report(checked.graph, checked.analysis, checked.warnings)
    diagram = to_dot(checked.graph, checked.analysis)
    entry.stem = stem
    _write(out / f"{stem}.txt", format_report(report) + "\n")
    tmp = out / f".{stem}.svg.tmp"
    render(diagram.dot, tmp, "svg")
    tmp.replace(out / f"{stem}.svg")
    entry.network, entry.params, entry.macs = report.network, report.total_params, report.macs
    entry.layers, entry.nodes = len(report.layers), diagram.nodes
    return entry


def index_text(entries: list[Entry]) -> str:
    """The gallery's index page (Markdown)."""
    from cnnspec.views.format import human

    drawn = [e for e in entries if not e.skipped]
    skipped = [e for e in entries if e.skipped]
    lines = [
        "# Gallery",
        "",
        "Every network in `specs/` with its defaults: a Graphviz diagram (identical repeated blocks folded,",
        "normalisation and activation drawn inside their layer) and the summary `cnnspec check` prints.",
        "Regenerate with `python -m cnnspec.commands.gallery`; see docs/diagrams.md and docs/analysis.md.",
        "",
        "| spec | network | layers | parameters | MACs | diagram | summary |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for e in drawn:
        stem = e.stem
        lines.append(
            f"| `{e.spec}` | [{e.network}]({stem}.md) | {e.layers} | {e.params:,} | {human(e.macs)} "
            f"| [{stem}.svg]({stem}.svg) ({e.nodes} nodes) | [{stem}.txt]({stem}.txt) |"
        )
    if skipped:
        lines += ["", "Not drawn (families that need parameters, or files that do not check):", ""]
        lines += [f"- `{e.spec}`: {e.skipped} ([source]({page_stem(e)}.md))" for e in skipped]
    lines += [""]
    for e in drawn:
        stem = e.stem
        lines += [f"## {e.network} (`{e.spec}`)", "", f"![{e.network}]({stem}.svg)", ""]
    return "\n".join(lines)


def page_stem(entry: Entry) -> str:
    """The name (without .md) of the entry's page: its drawing's stem, or its spec's when it was not drawn."""
    return entry.stem or Path(entry.source).stem


def page_text(entry: Entry) -> str:
    """One spec's page for the site (Markdown): diagram, summary and source.

    The summary and the source are pymdownx.snippets includes, resolved by name against mkdocs.yml's
    base paths (docs/gallery, specs), so they are read when the site is built.
    """
    from cnnspec.views.format import human

    stem = page_stem(entry)
    title = entry.network or entry.source
    settings = entry.spec.removeprefix(entry.source).strip()  # a variant's --set options
    lines = [f"# {title}" + (f" (`{settings}`)" if settings else ""), ""]
    if entry.skipped:
        lines += [f"`{entry.spec}` is not drawn with its defaults: {entry.skipped}.", ""]
    else:
        lines += [
            f"`{entry.spec}`: {entry.layers} layers, {entry.params:,} parameters, {human(entry.macs)} MACs; "
            f"the diagram has {entry.nodes} nodes.",
            "",
        ]
    if entry.imports:
        links = ", ".join(f"[{name}]({Path(name).stem}.md)" for name in entry.imports)
        lines += [f"Imports {links}.", ""]
    lines += ["[All networks](index.md)", ""]
    if not entry.skipped:
        lines += [
            "## Diagram",
            "",
            f"![{title}]({stem}.svg)",
            "",
            "## Summary",
            "",
            f"What `cnnspec check {entry.spec}` prints ([{stem}.txt]({stem}.txt)):",
            "",
            "```text",
            f'--8<-- "{stem}.txt"',
            "```",
            "",
        ]
    lines += ["## Spec", "", "```cnn", f'--8<-- "{entry.source}"', "```", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Regenerate the gallery; returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m cnnspec.commands.gallery", description=__doc__.splitlines()[0])
    p.add_argument("--specs", default="specs", help="folder of .cnn files (default: specs)")
    p.add_argument("--out", default="docs/gallery", help="output folder (default: docs/gallery)")
    args = p.parse_args(argv)
    specs, out = Path(args.specs), Path(args.out)
    if not specs.is_dir():
        print(f"gallery: error: no folder {specs}; run from the repository root or pass --specs", file=sys.stderr)
        return 2
    from cnnspec.backends.diagram import GraphvizMissing, find_dot

    try:
        find_dot()
    except GraphvizMissing as e:
        print(f"gallery: error: {e}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for spec in sorted(specs.glob("*.cnn")):
        runs = [("", None), *VARIANTS.get(spec.name, [])]
        for suffix, params in runs:
            entry = build_one(spec, out, params, suffix)
            entries.append(entry)
            if entry.stem or not suffix:
                _write(out / f"{page_stem(entry)}.md", page_text(entry))
            status = f"skipped: {entry.skipped}" if entry.skipped else f"{entry.nodes} nodes"
            print(f"{entry.spec}: {status}")
    _write(out / "index.md", index_text(entries))
    print(f"wrote {out / 'index.md'} ({sum(not e.skipped for e in entries)} networks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
