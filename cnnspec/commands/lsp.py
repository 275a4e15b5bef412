"""`cnnspec lsp`: the language server, over stdin and stdout (see docs/editors.md)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add the lsp subcommand."""
    p = sub.add_parser("lsp", help="run the language server over stdio, for editors (see docs/editors.md)")
    # Editors' clients (vscode-languageclient among them) pass --stdio; it is the only transport.
    p.add_argument("--stdio", action="store_true", help="talk over stdin and stdout (the default and only way)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serve until the editor says exit."""
    from cnnspec.commands.common import UsageError

    try:
        from cnnspec.lsp.server import serve
    except ImportError as e:
        raise UsageError(
            f"the language server needs pygls and lsprotocol ({e}): pip install pygls lsprotocol"
        ) from None
    return serve()
