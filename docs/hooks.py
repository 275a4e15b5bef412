"""MkDocs hook (mkdocs.yml `hooks:`): links from the docs to a stock spec lead to its gallery page on the site,
and the build stops when Pygments does not know the `cnn` lexer.

In the repository a page links the spec file itself (`../../specs/densenet.cnn`), which GitHub shows;
the site holds only docs/, so there the link goes to docs/gallery/<name>.md, which shows the spec's
source highlighted, with its diagram and summary.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

_LINK = re.compile(r"\]\(((?:\.\./)+specs/([\w.-]+)\.cnn)\)")


def on_config(config: Any) -> Any:
    """Refuse to build without cnnspec's lexer: pymdownx.highlight would show every cnn block as plain text."""
    from mkdocs.exceptions import PluginError
    from pygments.lexers import get_lexer_by_name
    from pygments.util import ClassNotFound

    try:
        get_lexer_by_name("cnn")
    except ClassNotFound:
        raise PluginError(
            "Pygments has no `cnn` lexer, so the specs would not be highlighted: install cnnspec with its "
            "entry points (`pip install -e '.[docs]'` at the repository root), then build again"
        ) from None
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite each link that leaves docs/ for specs/NAME.cnn into a link to gallery/NAME.md."""
    folder = posixpath.dirname(page.file.src_uri)

    def gallery(match: re.Match[str]) -> str:
        target = posixpath.normpath(posixpath.join("docs", folder, match[1]))
        if target != f"specs/{match[2]}.cnn":
            return match[0]
        return "](" + posixpath.relpath(f"gallery/{match[2]}.md", folder or ".") + ")"

    return _LINK.sub(gallery, markdown)
