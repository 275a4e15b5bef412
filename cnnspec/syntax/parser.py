"""Text to AST: the Lark LALR parser and its post-lexer, and the file's size limits.

Lark calls the post-lexer (_Separators) for every token and the AST builder
(cnnspec.syntax.builder) at every reduction; syntax errors go to
cnnspec.syntax.recovery, which reports them in words and resumes at the next
line. Nothing here knows what a layer or a block means.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedInput

from cnnspec.diagnostics import Diagnostic, SpecError
from cnnspec.diagnostics.codes import E606, E607, E610
from cnnspec.syntax import ast
from cnnspec.syntax.builder import Builder, Built
from cnnspec.syntax.limits import MAX_LINES, MAX_NAME, MAX_NESTING, MAX_SOURCE, MAX_STRING, MAX_TOKENS
from cnnspec.syntax.recovery import Recovery, syntax_diagnostic
from cnnspec.syntax.source import SourceMap, Span, elide
from cnnspec.syntax.state import CURRENT, TOP_LEVEL, ParseState, tok_span, token_pos


def grammar_text() -> str:
    """The grammar: grammar/cnnspec.lark of the source tree this package sits in, else the copy
    shipped in the wheel as cnnspec.grammar.

    The source tree comes first so that a checkout run with PYTHONPATH (a second worktree, say)
    parses with its own grammar, not with the one of the checkout pip installed in editable mode.
    """
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and (root / "grammar" / "cnnspec.lark").is_file():
        return (root / "grammar" / "cnnspec.lark").read_text()
    return resources.files("cnnspec.grammar").joinpath("cnnspec.lark").read_text()


_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}


class _TooDeep(Exception):
    """Brackets nested deeper than MAX_NESTING; carries the bracket that went too deep."""

    def __init__(self, tok: Token) -> None:
        super().__init__("too deep")
        self.tok = tok


class _TooManyTokens(Exception):
    """More than MAX_TOKENS tokens; carries the first token past the limit."""

    def __init__(self, tok: Token) -> None:
        super().__init__("too many tokens")
        self.tok = tok


class _Separators:
    """Post-lexer: newlines inside () and [] are not separators; runs of them fold into one.

    It also drops separators right after `{`, so a body may open on its own
    line. Tokens are never held back: the contextual lexer lexes each token in
    the parser state that the previous one left. The object holds no state, so
    one Lark instance serves every thread: what a parse must remember between
    tokens (open brackets, the previous token) is that parse's ParseState. It
    is not reset in process(): Lark restarts the token stream after each
    recovered syntax error, and the brackets stay open.
    """

    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Filter one parse's tokens (Lark's post-lexer interface)."""
        state = CURRENT.get(None) or ParseState("")  # Lark.lex() outside parse(): nobody reads the state
        stack = state.stack
        for tok in stream:
            state.tokens += 1
            if state.tokens > MAX_TOKENS:
                raise _TooManyTokens(tok)
            if tok.type != "_SEP":
                _layout(state, tok)
            if tok.type == "_SEP":
                top = stack[-1].type if stack else None
                if top in ("LPAR", "LSQB") or (state.last is None or state.last.type in ("LBRACE", "_SEP")):
                    continue
            elif tok.type in _OPENERS:
                stack.append(tok)
                if len(stack) > MAX_NESTING:
                    raise _TooDeep(tok)
            elif tok.type in _CLOSERS:
                # Pop to the matching opener; a stray closer leaves the stack alone.
                for i in range(len(stack) - 1, -1, -1):
                    if stack[i].type == _CLOSERS[tok.type]:
                        del stack[i:]
                        break
            elif (tok.type == "NAME" and len(tok) > MAX_NAME) or (tok.type == "STRING" and len(tok) > MAX_STRING + 2):
                _too_long(state, tok)
            state.prev, state.last = state.last, tok
            yield tok


def _layout(state: ParseState, tok: Token) -> None:
    """Follow the layout of the lines around `{` bodies (see ParseState), for tok, a token that is
    not a separator, before the post-lexer moves the bracket stack past it. Parsing never
    depends on it: it only names the `{` that lacks its `}` when an error comes later."""
    last = state.last
    new_line = (
        last is None
        or (last.type == "_SEP" and "\n" in str(last))
        or (last.type == "LBRACE" and (last.end_line or 0) < (tok.line or 0))
    )
    if new_line:
        state.indent = (tok.column or 1) - 1
        state.first = tok
    stack = state.stack
    if tok.type == "LBRACE":
        state.braces[token_pos(tok)] = [state.indent, -1]
    elif tok.type == "RBRACE" and state.suspect is not None:
        opener = state.suspect[0]
        closed = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].type == "LBRACE"), None)
        # The suspect closed by a `}` indented like its own line was only laid out loosely; one
        # indented less belongs to a body around it, which confirms the `}` missing.
        proper = not new_line or state.indent >= state.braces[token_pos(opener)][0]
        if closed is not None and stack[closed] is opener and proper:
            state.suspect = None
    elif new_line and tok.type != "RBRACE" and stack and stack[-1].type == "LBRACE":
        top = stack[-1]
        layout = state.braces[token_pos(top)]
        first = layout[1] < 0
        if first:
            layout[1] = state.indent
        broken = not first and layout[1] > layout[0] >= state.indent
        keyword = tok.type == "NAME" and str(tok) in TOP_LEVEL
        if state.suspect is None and (broken or keyword) and token_pos(top) not in state.reported:
            state.suspect = (top, tok)


#: Guards the first build of the parser, so that threads starting together build it once.
_BUILD_LOCK = threading.Lock()


def _parser() -> Lark:
    """The one Lark parser, built on first use (building it costs a cold start, see _build_parser).

    Sharing it between threads is safe: it is never changed after it is built, each
    parse() makes its own lexer and parser state (LexerThread, ParserState), the
    post-lexer keeps no state (_Separators), and the AST builder's callbacks keep
    none either (the file name and the errors found are the parse's ParseState). The
    contextual lexer builds each state's scanner on first use without a lock; two
    threads doing so at once build equal scanners (there are no lexer callbacks to
    add), so either one serves.
    """
    with _BUILD_LOCK:
        return _build_parser()


@cache
def _build_parser() -> Lark:
    return Lark(
        grammar_text(),
        start=["start", "expr"],
        parser="lalr",
        lexer="contextual",
        postlex=_Separators(),
        # The AST is built as the parser reduces: no parse tree is made, then walked. The builder
        # sees every token, keywords and brackets too, as spans start and end at them.
        transformer=Builder(parse_expr),
        keep_all_tokens=True,
        cache=True,  # a pickled parser in the temp dir: saves ~0.2 s at every start
    )


def parse(text: str, file: str, sources: SourceMap | None = None) -> ast.Module:
    """Parse one file's text into an ast.Module, or raise SpecError.

    Nothing is cached: a check parses each file it reads once (the loader sees to
    that), and the next check reads the files again, as they may have changed.
    """
    if sources is not None:
        sources.add(file, text)
    return _parse(text, file, "start", sources)


def parse_expr(text: str, file: str = "<--set>") -> ast.Expr:
    """Parse one expression, e.g. the value of `--set layers=[3, 4, 6, 3]`; raises SpecError."""
    sources = SourceMap()
    sources.add(file, text)
    return _parse(text, file, "expr", sources)


def _parse(text: str, file: str, start: str, sources: SourceMap | None) -> Any:
    """The AST of text, or SpecError with every independent syntax error (or, when there are
    none, the first place nested too deep, or every error in a literal)."""
    if len(text) > MAX_SOURCE:
        span = Span(file, 1, 1, 1, 2)
        raise SpecError(
            [Diagnostic(E607, f"{file} has {len(text):,} characters, more than the limit of {MAX_SOURCE:,}", span)],
            sources,
        )
    lines = text.count("\n") + (not text.endswith("\n"))
    if lines > MAX_LINES:
        span = Span(file, MAX_LINES + 1, 1, MAX_LINES + 1, 2)
        raise SpecError(
            [Diagnostic(E607, f"{file} has {lines:,} lines, more than the limit of {MAX_LINES:,}", span, help=_SPLIT)],
            sources,
        )
    state = ParseState(file)
    recovery = Recovery(text, file, state)
    built = None
    token = CURRENT.set(state)
    try:
        built = _parser().parse(text, start=start, on_error=recovery.handle)
    except _TooDeep as e:
        recovery.diags.append(_too_deep(file, e.tok.line or 1, e.tok.column or 1, "brackets are"))
    except _TooManyTokens as e:
        msg = f"{file} has more than {MAX_TOKENS:,} tokens (names, numbers, symbols, line ends); the limit passes here"
        recovery.diags.append(Diagnostic(E607, msg, tok_span(file, e.tok), help=_SPLIT))
    except UnexpectedInput as e:
        if not recovery.diags:
            recovery.diags.append(syntax_diagnostic(e, text, file, state))
    except Exception:
        # Recovery itself failed on a strange input; what was found so far stands.
        if not recovery.diags:
            raise
    finally:
        CURRENT.reset(token)
    if recovery.diags:
        raise SpecError(recovery.diags, sources)
    assert isinstance(built, Built), built
    if built.height > MAX_NESTING:
        line, col = _too_deep_node(built)
        raise SpecError([_too_deep(file, line, col, "the statements and expressions are")], sources)
    if state.errors:
        raise SpecError(state.errors, sources, state.omitted)
    return built.value


_SPLIT = ["no written spec is this large; repeat layers with `* N`, `for` loops and blocks, or split it into files"]


def _too_long(state: ParseState, tok: Token) -> None:
    """E610 for a name or a string longer than its limit (a string's length without its quotes)."""
    what, limit, size = ("name", MAX_NAME, len(tok)) if tok.type == "NAME" else ("string", MAX_STRING, len(tok) - 2)
    state.error(
        Diagnostic(
            E610,
            f"this {what} is {size:,} characters long, more than the limit of {limit:,}: {elide(str(tok))}",
            tok_span(state.file, tok),
            help=[f"no spec needs a {what} this long; shorten it"],
        )
    )


def _too_deep(file: str, line: int, col: int, what: str) -> Diagnostic:
    return Diagnostic(
        E606,
        f"{what} nested more than {MAX_NESTING} levels deep here",
        Span(file, line, col, line, col + 1),
        help=["no hand-written spec nests this deep; split the expression or the statement with `let` or blocks"],
    )


def _too_deep_node(root: Built) -> tuple[int, int]:
    """The position of the first node nested deeper than MAX_NESTING, last children first
    (which node E606 names is part of its golden text)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return node.line, node.column
        stack.extend((kid, depth + 1) for kid in node.kids)
    raise AssertionError("no node below MAX_NESTING in a tree that high")
