"""The documentation site: `mkdocs build --strict` passes (no warning: every page in the nav or reached
from the gallery, every link and anchor found), `cnn` blocks are highlighted by cnnspec's lexer, and the
gallery has a page for every stock spec showing its diagram, summary and source."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import pytest
from entry_points import env_with_entry_points
from mkdocs.config import load_config
from support import SPECS

from cnnspec.commands.gallery import VARIANTS

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "docs" / "gallery"


# The build takes 7-13 s on two busy cores (mkdocs reports 5-7 s): not marked slow.
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The site built into a temporary folder, with pyproject's entry points (the lexer) visible."""
    tmp = tmp_path_factory.mktemp("site")
    env = env_with_entry_points(tmp / "entry_points", "pygments.lexers")
    env["NO_MKDOCS_2_WARNING"] = "1"
    done = subprocess.run(
        # From another folder: mkdocs.yml's paths (hooks, snippets) are its own folder's.
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp / "site")],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "site", done.stdout + done.stderr


def test_the_site_builds_strictly_with_every_page(site: tuple[Path, str]) -> None:
    out, log = site
    assert "WARNING" not in log, log
    pages = {p.parent.relative_to(out).as_posix() for p in out.rglob("index.html")} - {"."}
    sources = {p.relative_to(ROOT / "docs").with_suffix("").as_posix() for p in (ROOT / "docs").rglob("*.md")}
    expected = {s.removesuffix("/index").replace("/README", "") for s in sources} - {"index"}
    assert pages == expected
    # Every docs page but the gallery's spec pages is in the nav.
    nav = load_config(str(ROOT / "mkdocs.yml"))["nav"]
    listed = set(re.findall(r"[\w/-]+\.md", str(nav)))
    outside = {p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md")} - listed
    assert outside and all(re.fullmatch(r"gallery/[\w-]+\.md", p) for p in outside), outside - listed


def test_every_relative_link_and_image_in_the_built_site_resolves(site: tuple[Path, str]) -> None:
    """Beyond mkdocs' own link check: what the pages finally point at (diagrams, summaries, assets) exists."""
    out, _ = site
    broken, checked = [], 0
    for html in out.rglob("*.html"):
        if html.name == "404.html":  # its links are root-absolute: it is served from any folder
            continue
        for url in re.findall(r'(?:href|src)="([^"#?]*)[^"]*"', html.read_text(encoding="utf-8")):
            if not url or re.match(r"[a-z]+:|//", url):
                continue
            checked += 1
            target = html.parent / unquote(url)
            if not (target / "index.html" if url.endswith("/") else target).exists():
                broken.append(f"{html.relative_to(out)}: {url}")
    assert not broken, broken
    assert checked > 40 * 20, checked  # every page links the nav, the assets and its neighbours


def test_cnn_blocks_are_highlighted_by_the_lexer(site: tuple[Path, str]) -> None:
    out, _ = site
    html = (out / "language" / "index.html").read_text(encoding="utf-8")
    # Pygments' short classes: k keyword, nb layer kind, nl label, nc block, nf function.
    for span in ('<span class="k">network</span>', '<span class="nb">conv</span>', '<span class="nc">BasicConv</span>'):
        assert span in html, span
    page = (out / "gallery" / "resnet" / "index.html").read_text(encoding="utf-8")
    assert '<span class="nl">conv1</span>' in page and '<span class="nf">kaiming_normal</span>' in page
    # The error index's wrong and fixed examples; E001's stray `@` is the lexer's error token.
    errors = (out / "errors" / "index.html").read_text(encoding="utf-8")
    assert errors.count('<span class="k">network</span>') >= 100
    assert '<span class="err">@</span>' in errors


def test_each_gallery_page_shows_its_diagram_summary_and_source(site: tuple[Path, str]) -> None:
    out, _ = site
    for page in sorted(GALLERY.glob("*.md")):
        if page.name == "index.md":
            continue
        html = (out / "gallery" / page.stem / "index.html").read_text(encoding="utf-8")
        assert "--8&lt;--" not in html and "--8<--" not in html, f"{page.name}: a snippet was not included"
        summary = GALLERY / f"{page.stem}.txt"
        if summary.exists():
            assert f'src="../{page.stem}.svg"' in html, page.name
            first = summary.read_text(encoding="utf-8").splitlines()[0].strip()
            assert first.split()[0] in html, f"{page.name}: the summary is not shown"
        assert '<span class="k">network</span>' in html, f"{page.name}: no highlighted source"
    # A link from a family page to a spec file leads to the spec's gallery page.
    family = (out / "families" / "densenet" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../gallery/densenet121/"' in family
    assert not re.search(r'href="[^"]*specs/[^"]*\.cnn"', family)


def test_the_gallery_has_a_page_for_every_stock_spec_and_variant() -> None:
    stems = {p.stem for p in SPECS.glob("*.cnn")}
    stems |= {f"{Path(spec).stem}-{suffix}" for spec, runs in VARIANTS.items() for suffix, _ in runs}
    assert {p.stem for p in GALLERY.glob("*.md")} - {"index"} == stems
    index = (GALLERY / "index.md").read_text(encoding="utf-8")
    for stem in stems:
        assert f"]({stem}.md)" in index, stem
        page = (GALLERY / f"{stem}.md").read_text(encoding="utf-8")
        for included in re.findall(r'--8<-- "([^"]+)"', page):
            assert (GALLERY / included).exists() or (SPECS / included).exists(), f"{stem}.md includes {included}"


def test_the_committed_gallery_is_what_the_generator_writes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docs/gallery/ has no hand edits: regenerating it gives the same pages and summaries, and the same files.

    The SVGs are compared by name only: their bytes depend on the Graphviz version installed.
    """
    from cnnspec.commands.gallery import main as gallery

    out = tmp_path / "gallery"
    assert gallery(["--specs", str(SPECS), "--out", str(out)]) == 0, capsys.readouterr().err
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(p.name for p in GALLERY.iterdir())
    stale = [
        name
        for name in written
        if not name.endswith(".svg")
        and (out / name).read_text(encoding="utf-8") != (GALLERY / name).read_text(encoding="utf-8")
    ]
    assert not stale, f"docs/gallery is stale, run `python -m cnnspec.commands.gallery`: {stale}"


def test_the_hook_sends_links_to_spec_files_to_their_gallery_pages() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from hooks import on_page_markdown
    finally:
        sys.path.remove(str(ROOT / "docs"))

    def page(src: str) -> SimpleNamespace:
        return SimpleNamespace(file=SimpleNamespace(src_uri=src))

    text = "[a](../../specs/densenet.cnn) [b](../specs/x.cnn) [c](../gallery/x.svg)"
    assert on_page_markdown(text, page("families/densenet.md"), None, None) == (
        "[a](../gallery/densenet.md) [b](../specs/x.cnn) [c](../gallery/x.svg)"
    )
    assert on_page_markdown("[a](../specs/lenet5.cnn)", page("language.md"), None, None) == "[a](gallery/lenet5.md)"
