"""Text to AST: the Lark LALR parser, its post-lexer, and the AST builder.

The transformer only builds nodes from cnnspec.syntax.ast; nothing here knows what
a layer or a block means. Syntax errors become diagnostics that say what was
expected in words.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cnnspec.diagnostics import Diagnostic, Note, SpecError
from cnnspec.diagnostics.codes import E001, E002, E003, E004, E005, E218, E606, E607, E610
from cnnspec.syntax import ast
from cnnspec.syntax.ast import MAX_INT
from cnnspec.syntax.source import SourceMap, Span, elide


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


#: Deepest nesting of brackets and of the parse tree (expressions, statements)
#: the parser accepts. Real specs stay below 20; the limit keeps the recursive
#: tree builder and evaluator far from Python's recursion limit on any input.
MAX_NESTING = 200
#: The size limits of one spec file (docs/language.md, "Limits"). The stock specs are a few KB,
#: a few hundred lines and under 2,000 tokens; the limits are far above any written spec, and
#: low enough that the worst file within them is checked in a few seconds and under 500 MB
#: (parsing costs about 20-60 µs a token, each layer checked about 100 µs more).
#: Largest spec file: bytes as read (the loader), characters for text given inline.
MAX_SOURCE = 1024 * 1024
#: Most lines in one file.
MAX_LINES = 10_000
#: Most tokens (names, numbers, strings, symbols, line ends) in one file: what parsing time
#: grows with, whatever the layout.
MAX_TOKENS = 30_000
#: Longest name, longest string literal (in characters) and most items in one list literal.
MAX_NAME = 256
MAX_STRING = 4096
MAX_LIST_ITEMS = 10_000
#: Syntax errors reported per file before giving up, and errors met in all (most of them
#: repeats of a reported one, later on its line) before giving up.
MAX_SYNTAX_ERRORS = 10
MAX_ERROR_EVENTS = 1000

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


class _Parse:
    """The state of one parse: what the post-lexer keeps, syntax-error recovery reads and the
    AST builder needs. Made anew for every parse() call and never shared.

    stack: the brackets open at the current token; last: the previous token passed on; prev: the
    one before it (when the parser refuses `last`, the token before the one in error); tokens: how
    many the lexer made so far; file: the name spans carry; errors: errors in literals (bad
    escapes, numbers out of range, literals over the limits), at most MAX_SYNTAX_ERRORS of them,
    and omitted: how many more there were.

    The layout, read only to explain an error: indent is the indentation of the current line;
    braces holds, for each `{` (by position), the indentation of its line and of the first line
    of its body; suspect is the first `{` whose body the layout says ended without a `}` (a line
    inside it indented no deeper than the `{`'s own line, or starting with `block`, `network` or
    `import`), with the token where that was seen; reported: the `{` already named in an E003;
    first: the first token of the current line.
    """

    def __init__(self, file: str) -> None:
        self.stack: list[Token] = []
        self.last: Token | None = None
        self.prev: Token | None = None
        self.tokens = 0
        self.file = file
        self.errors: list[Diagnostic] = []
        self.omitted = 0
        self.indent = 0
        self.braces: dict[tuple[int, int], list[int]] = {}
        self.suspect: tuple[Token, Token] | None = None
        self.reported: set[tuple[int, int]] = set()
        self.first: Token | None = None

    def error(self, d: Diagnostic) -> None:
        """Record an error in a literal; past MAX_SYNTAX_ERRORS only count it (a file of a
        hundred thousand overlong names must not make a hundred thousand diagnostics)."""
        if len(self.errors) < MAX_SYNTAX_ERRORS:
            self.errors.append(d)
        else:
            self.omitted += 1


#: The _Parse of the parse running in this thread (and context). Lark takes the post-lexer and
#: the AST builder once, when the parser is built, and calls them for every parse; a ContextVar
#: is how that one shared post-lexer and builder reach the state of the parse they are serving
#: without sharing it.
_CURRENT: ContextVar[_Parse] = ContextVar("cnnspec_parse_state")


class _Separators:
    """Post-lexer: newlines inside () and [] are not separators; runs of them fold into one.

    It also drops separators right after `{`, so a body may open on its own
    line. Tokens are never held back: the contextual lexer lexes each token in
    the parser state that the previous one left. The object holds no state, so
    one Lark instance serves every thread: what a parse must remember between
    tokens (open brackets, the previous token) is that parse's _Parse. It
    is not reset in process(): Lark restarts the token stream after each
    recovered syntax error, and the brackets stay open.
    """

    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Filter one parse's tokens (Lark's post-lexer interface)."""
        state = _CURRENT.get(None) or _Parse("")  # Lark.lex() outside parse(): nobody reads the state
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


#: Words that start a top-level item; a line inside a body that starts with one is a body left open.
_TOP_LEVEL = frozenset({"block", "network", "import"})


def _pos(tok: Token) -> tuple[int, int]:
    return tok.line or 0, tok.column or 0


def _layout(state: _Parse, tok: Token) -> None:
    """Follow the layout of the lines around `{` bodies (see _Parse), for tok, a token that is
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
        state.braces[_pos(tok)] = [state.indent, -1]
    elif tok.type == "RBRACE" and state.suspect is not None:
        opener = state.suspect[0]
        closed = next((i for i in range(len(stack) - 1, -1, -1) if stack[i].type == "LBRACE"), None)
        # The suspect closed by a `}` indented like its own line was only laid out loosely; one
        # indented less belongs to a body around it, which confirms the `}` missing.
        proper = not new_line or state.indent >= state.braces[_pos(opener)][0]
        if closed is not None and stack[closed] is opener and proper:
            state.suspect = None
    elif new_line and tok.type != "RBRACE" and stack and stack[-1].type == "LBRACE":
        top = stack[-1]
        layout = state.braces[_pos(top)]
        first = layout[1] < 0
        if first:
            layout[1] = state.indent
        broken = not first and layout[1] > layout[0] >= state.indent
        keyword = tok.type == "NAME" and str(tok) in _TOP_LEVEL
        if state.suspect is None and (broken or keyword) and _pos(top) not in state.reported:
            state.suspect = (top, tok)


#: Guards the first build of the parser, so that threads starting together build it once.
_BUILD_LOCK = threading.Lock()


def _parser() -> Lark:
    """The one Lark parser, built on first use (building it costs a cold start, see _build_parser).

    Sharing it between threads is safe: it is never changed after it is built, each
    parse() makes its own lexer and parser state (LexerThread, ParserState), the
    post-lexer keeps no state (_Separators), and the AST builder's callbacks keep
    none either (the file name and the errors found are the parse's _Parse). The
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
        transformer=_Builder(),
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
    state = _Parse(file)
    recovery = _Recovery(text, file, state)
    built = None
    token = _CURRENT.set(state)
    try:
        built = _parser().parse(text, start=start, on_error=recovery.handle)
    except _TooDeep as e:
        recovery.diags.append(_too_deep(file, e.tok.line or 1, e.tok.column or 1, "brackets are"))
    except _TooManyTokens as e:
        msg = f"{file} has more than {MAX_TOKENS:,} tokens (names, numbers, symbols, line ends); the limit passes here"
        recovery.diags.append(Diagnostic(E607, msg, _tok_span(file, e.tok), help=_SPLIT))
    except UnexpectedInput as e:
        if not recovery.diags:
            recovery.diags.append(syntax_diagnostic(e, text, file, state))
    except Exception:
        # Recovery itself failed on a strange input; what was found so far stands.
        if not recovery.diags:
            raise
    finally:
        _CURRENT.reset(token)
    if recovery.diags:
        raise SpecError(recovery.diags, sources)
    assert isinstance(built, _Built), built
    if built.height > MAX_NESTING:
        line, col = _too_deep_node(built)
        raise SpecError([_too_deep(file, line, col, "the statements and expressions are")], sources)
    if state.errors:
        raise SpecError(state.errors, sources, state.omitted)
    return built.value


_SPLIT = ["no written spec is this large; repeat layers with `* N`, `for` loops and blocks, or split it into files"]


def _too_long(state: _Parse, tok: Token) -> None:
    """E610 for a name or a string longer than its limit (a string's length without its quotes)."""
    what, limit, size = ("name", MAX_NAME, len(tok)) if tok.type == "NAME" else ("string", MAX_STRING, len(tok) - 2)
    state.error(
        Diagnostic(
            E610,
            f"this {what} is {size:,} characters long, more than the limit of {limit:,}: {elide(str(tok))}",
            _tok_span(state.file, tok),
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


def _too_deep_node(root: _Built) -> tuple[int, int]:
    """The position of the first node nested deeper than MAX_NESTING, last children first
    (which node E606 names is part of its golden text)."""
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            return node.line, node.column
        stack.extend((kid, depth + 1) for kid in node.kids)
    raise AssertionError("no node below MAX_NESTING in a tree that high")


class _Recovery:
    """Lark's on_error handler: reports a syntax error, then resumes at the next line.

    After an error inside a line, the rest of that line is skipped (its errors
    are not reported: they are echoes of the first). At a line end or a `}`
    the parser's stack is unwound to a state that accepts it, so the next
    statement parses normally. A bracket left open when a new line starts a
    statement is reported at the bracket (E003) and closed.
    """

    def __init__(self, text: str, file: str, post: _Parse) -> None:
        self.text = text
        self.file = file
        self.post = post
        self.diags: list[Diagnostic] = []
        self.lines: set[int] = set()
        self.events = 0

    def _record(self, e: UnexpectedInput) -> None:
        """Record e unless its line has an error already. Checked before the diagnostic is made:
        making one asks Lark what the parser accepts, and a long line of junk may hold
        thousands of errors."""
        if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
            d = syntax_diagnostic(e, self.text, self.file, self.post)  # once: parsing ends there
            if not (self.post.reported and d.code == E003 and "`{`" in d.message):
                self._add(d)  # a body reported open mid-file is the likely cause: not twice
            return
        line = (e.token.line if isinstance(e, UnexpectedToken) else None) or e.line
        if line not in self.lines:
            self._add(syntax_diagnostic(e, self.text, self.file))

    def _add(self, d: Diagnostic) -> None:
        line = d.span.line if d.span else 0
        if line not in self.lines:
            self.lines.add(line)
            self.diags.append(d)

    def _give_up(self, e: UnexpectedInput) -> None:
        """Say, under the last error, where checking stopped: the count at the end is of the
        errors found, and more may follow."""
        line = (e.token.line if isinstance(e, UnexpectedToken) else None) or e.line
        where = f"at line {line:,} " if line and line > 0 else ""
        n = len(self.diags)
        errors = f"{n} syntax error{'s' * (n != 1)}"
        note = f"checking stopped {where}after {errors}; the rest of the file was not checked"
        self.diags[-1].notes.append(Note(note))

    def handle(self, e: UnexpectedInput) -> bool:
        """Record e; return whether parsing should go on."""
        self.events += 1
        if len(self.diags) >= MAX_SYNTAX_ERRORS or (self.events > MAX_ERROR_EVENTS and self.diags):
            self._give_up(e)
            return False
        if isinstance(e, UnexpectedCharacters):
            self._record(e)
            return True  # Lark skips the character
        if not isinstance(e, UnexpectedToken) or e.token.type == "$END":
            self._record(e)
            return False
        tok = e.token
        ip = e.interactive_parser
        post = self.post
        opener = post.stack[-1] if post.stack and post.stack[-1].type in ("LPAR", "LSQB") else None
        # Whether tok is the first token on its line: the token before it ended on an earlier
        # line, or at the start of this one (a line end). Read from the tokens, not the text:
        # scanning the text back to the line start for each error is quadratic on a long line.
        # (A token the contextual lexer refused itself never reached the post-lexer: then the
        # last token passed on is the one before it.)
        prev = post.prev if post.last is tok else post.last
        new_line = prev is None or (prev.end_line or 0, prev.end_column or 0) <= (tok.line or 0, 1)
        if opener is not None and (new_line or tok.type in ("LBRACE", "RBRACE")):
            self._add(_unclosed(opener, tok, self.file))
            while post.stack and post.stack[-1].type in ("LPAR", "LSQB"):
                post.stack.pop()
            if _unwind_feed(ip, Token.new_borrow_pos("_SEP", "\n", tok)):
                _unwind_feed(ip, tok, pop=False)  # the token starts the next statement
                return True
            return False
        suspect = post.suspect
        if suspect is not None and _pos(tok) >= _pos(suspect[1]) and tok.line not in self.lines:
            # The layout says a body was left open above: name its `{`, not the token that
            # only shows it, perhaps many lines further on.
            post.reported.add(_pos(suspect[0]))
            post.suspect = None
            where = f"unexpected {_token_text(tok)} here, still inside that body"
            self._add(_unclosed_brace(suspect, self.file, _tok_span(self.file, tok), where))
            self.lines.add(tok.line or 0)
        elif post.first is not None and str(post.first) in _TOP_LEVEL and _open_reported(post):
            self.lines.add(tok.line or 0)  # the next item after a body reported open: an echo of that error
        else:
            self._record(e)
        if tok.type in ("_SEP", "RBRACE"):
            return _unwind_feed(ip, tok)
        return True  # drop the token; the rest of the line follows


def _open_reported(post: _Parse) -> bool:
    """Whether a `{` already reported as never closed is still open."""
    return any(t.type == "LBRACE" and _pos(t) in post.reported for t in post.stack)


def _unwind_feed(ip: Any, tok: Token, pop: bool = True) -> bool:
    """Feed tok to the parser, first popping states (the statement in error) until it fits.

    Each try runs on a copy, so a failed feed leaves no half-done reductions
    behind. False when no state on the stack takes tok.
    """
    state = ip.parser_state
    while state.state_stack:
        trial = state.copy(deepcopy_values=False)
        try:
            trial.feed_token(tok)
        except UnexpectedInput:
            if not pop or len(state.state_stack) <= 1:
                return False
            state.state_stack.pop()
            if state.value_stack:
                state.value_stack.pop()
            continue
        ip.parser_state = trial
        return True
    return False


def _unclosed(opener: Token, tok: Token, file: str) -> Diagnostic:
    close = {"LPAR": ")", "LSQB": "]"}[opener.type]
    line, col = opener.line or 1, opener.column or 1
    return Diagnostic(
        E003,
        f"this `{opener}` is never closed",
        Span(file, line, col, line, col + 1),
        notes=[Note(f"expected `{close}` before {_token_text(tok)}", _tok_span(file, tok))],
        help=[f"add `{close}` at the end of line {line}"],
    )


def _unclosed_brace(suspect: tuple[Token, Token], file: str, where: Span, what: str) -> Diagnostic:
    """E003 for a `{` whose body the layout says ended without a `}` (_Parse.suspect); where,
    what: the place the parser noticed, and what it says there."""
    opener, first = suspect
    line, col = opener.line or 1, opener.column or 1
    at = first.line or 1
    notes = []
    if at != where.line:
        why = "starts a new item" if str(first) in _TOP_LEVEL else "is indented no deeper than the line of the `{`"
        notes.append(Note(f"the body seems to end before line {at}, which {why}", _tok_span(file, first)))
    notes.append(Note(what, where))
    return Diagnostic(
        E003,
        "this `{` is never closed",
        Span(file, line, col, line, col + 1),
        notes=notes,
        help=[f"add `}}` before line {at}"],
    )


# ------------------------------------------------------------ syntax errors

_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "COMMA": "`,`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "STAR": "`*`",
    "DOT": "`.`",
    "_SEP": "a new line",
    "_POW": "`**`",
    "COMP_OP": "a comparison",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "MINUS": "`-`",
    "$END": "the end of the file",
}


def _word(term: str) -> str:
    if term in _WORDS:
        return _WORDS[term]
    return f"`{term.lower()}`"


#: Tokens that continue an expression; listing them all after every operand is noise.
_OPERATORS = frozenset(
    {"ADD_OP", "MUL_OP", "MINUS", "COMP_OP", "_POW", "AND", "OR", "IF", "DOT", "LSQB", "FOR", "STAR"}
)
_EXPR_START = frozenset({"NUMBER", "NAME", "STRING", "LSQB", "LPAR", "MINUS", "TRUE", "FALSE", "IN", "NOT"})


def _describe_expected(expected: set[str]) -> str:
    """What the parser expected, in words a person uses."""
    exp = {t for t in expected if not t.startswith("__ANON")}
    if {"NAME", "RBRACE"} <= exp and ("RESIDUAL" in exp or "LBRACE" in exp):
        return "expected a layer, a block call or `}`"
    if {"BLOCK", "NETWORK", "IMPORT"} <= exp:
        return "expected `block`, `network` or `import`"
    if "NUMBER" in exp and "NAME" in exp:
        rest = sorted(exp - _EXPR_START)
        return "expected " + _join(["an expression"] + [_word(t) for t in rest])
    plain = exp - _OPERATORS
    if plain and plain != exp:
        # After an operand: name what ends it (`,`, `)`, a new line), not every operator.
        return "expected " + _join(sorted(_word(t) for t in plain))
    return "expected " + _join(sorted(_word(t) for t in exp))


def _lines(text: str) -> list[str]:
    """The lines of text as Lark counts them (only \\n ends a line)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _token_text(tok: Token) -> str:
    if tok.type == "_SEP":
        return "a new line" if "\n" in str(tok) else "`;`"
    if tok.type == "$END":
        return "the end of the file"
    return f"`{tok}`"


def syntax_diagnostic(e: UnexpectedInput, text: str, file: str, state: _Parse | None = None) -> Diagnostic:
    """Turn a Lark error into a diagnostic that says, in words, what was expected; state, the
    parse's, names the `{` whose body the layout says was left open, if the file ends in one."""
    helps: list[str] = []
    notes: list[Note] = []
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = Span(file, e.line, e.column, e.line, e.column + 1)
        shown = f"`{ch}`" if ch.isprintable() and ch.strip() else f"U+{ord(ch):04X}" if ch else "end of input"
        msg = f"unexpected character {shown}"
        if ch == "=":
            helps.append("compare with `==`; `=` only sets a keyword argument or a default")
        elif ch in "'":
            helps.append('strings use double quotes: "..."')
        return Diagnostic(E001, msg, span, help=helps)
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = _lines(text)
        while len(lines) > 1 and not lines[-1].strip():
            lines.pop()  # point at the end of the last line that has text
        span = Span(file, len(lines), len(lines[-1]) + 1, len(lines), len(lines[-1]) + 2)
        opener = _unclosed_opener(text, file)
        brace = opener is not None and lines[opener.line - 1][opener.col - 1] == "{"
        if brace and state is not None and state.suspect is not None:
            return _unclosed_brace(state.suspect, file, span, "the file ends here")
        if opener is not None:
            ch = lines[opener.line - 1][opener.col - 1]
            close = {"(": ")", "[": "]", "{": "}"}[ch]
            return Diagnostic(
                E003,
                f"this `{ch}` is never closed",
                opener,
                notes=[Note("the file ends here", span)],
                help=[f"add the missing `{close}`"],
            )
        expected = set(e.expected) if isinstance(e, UnexpectedEOF) else set(e.accepts or e.expected)
        return Diagnostic(E002, f"unexpected end of file; {_describe_expected(expected)}", span)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    line = tok.line or e.line
    col = tok.column or e.column
    if tok.type == "$END":
        lines = _lines(text)
        line, col = len(lines), len(lines[-1]) + 1
    end_col = (tok.end_column or col + 1) if tok.type not in ("_SEP", "$END") else col + 1
    span = Span(file, line, col, line, max(end_col, col + 1))
    expected = set(e.accepts or e.expected)
    msg = f"unexpected {_token_text(tok)}; {_describe_expected(expected)}"
    if tok.type == "EQUAL" and "COLON" in expected:
        helps.append("name a layer with `:`, as in `conv1: conv(64, 3)`; `=` sets keyword arguments")
    elif tok.type == "COLON" and "EQUAL" in expected:
        helps.append("keyword arguments use `=`, as in `conv(64, 3, stride = 2)`")
    elif "COMMA" in expected and tok.type in ("NAME", "NUMBER", "STRING", "LSQB", "TRUE", "FALSE"):
        helps.append("separate arguments with `,`")
    elif tok.type == "RBRACE" and "RBRACE" not in expected:
        helps.append("this `}` has no matching `{`; check the braces above")
    elif tok.type in ("RPAR", "RSQB") and tok.type not in expected:
        helps.append(f"this `{tok}` has no matching opening bracket")
    return Diagnostic(E002, msg, span, notes=notes, help=helps)


def _unclosed_opener(text: str, file: str) -> Span | None:
    """The innermost bracket left open at the end of the text, ignoring comments and strings."""
    stack: list[tuple[str, int, int]] = []
    line, col = 1, 1
    in_comment = in_string = False
    for ch in text:
        if ch == "\n":
            line, col = line + 1, 1
            in_comment = False
            continue
        if in_comment:
            pass
        elif in_string:
            in_string = ch != '"'
        elif ch == "#":
            in_comment = True
        elif ch == '"':
            in_string = True
        elif ch in "([{":
            stack.append((ch, line, col))
        elif ch in ")]}" and stack:
            stack.pop()
        col += 1
    if not stack:
        return None
    _, line, col = stack[-1]
    return Span(file, line, col, line, col + 1)


# -------------------------------------------------------------- AST builder


def _tok_span(file: str, tok: Token) -> Span:
    return Span(file, tok.line or 0, tok.column or 0, tok.end_line or tok.line or 0, tok.end_column or 0)


#: The terminals whose text a rule reads; every other token (keywords, brackets, commas,
#: separators) only marks where a node starts or ends.
_VALUE_TOKENS = frozenset({"NAME", "NUMBER", "STRING", "COMP_OP", "ADD_OP", "MUL_OP", "MINUS"})


@dataclass(slots=True)
class _Built:
    """What a reduction leaves on the parser's stack: the value built (an AST node, a list of
    them), and what a parse tree's node would tell about it.

    extent: the text it covers, brackets around an expression included (the parent's span
    starts and ends there); line, column: where the node itself starts (a parenthesised
    expression starts inside); height: how many nodes deep it is; kids: the _Built it was made
    from, kept to name the node that is too deep when height passes MAX_NESTING.
    """

    value: Any
    extent: Span
    line: int
    column: int
    height: int
    kids: list[_Built]


def _node(f: Any, _rule: str, children: list[Any], _meta: Any) -> _Built:
    """Build one node (Lark's visit wrapper for each rule): call the rule's method with the span
    of everything the rule matched and the values it reads, in order; absent optional parts
    (None) and keyword or bracket tokens are left out."""
    values: list[Any] = []
    kids: list[_Built] = []
    height = 0
    first = last = None  # the first and last child present: the span runs from one to the other
    for child in children:
        if child is None:
            continue
        if isinstance(child, _Built):
            kids.append(child)
            values.append(child.value)
            height = max(height, child.height)
        elif child.type in _VALUE_TOKENS:
            values.append(child)
        if first is None:
            first = child
        last = child
    span = _span_between(first, last)
    return _Built(f(span, *values), span, span.line, span.col, height + 1, kids)


def _span_between(first: _Built | Token | None, last: _Built | Token | None) -> Span:
    """The span from the start of first to the end of last (an empty rule's: the file's start)."""
    file = _CURRENT.get().file
    if first is None or last is None:
        return Span(file, 1, 1, 1, 1)
    if isinstance(first, _Built):
        line, col = first.extent.line, first.extent.col
    else:
        line, col = first.line, first.column
    if isinstance(last, _Built):
        return Span(file, line, col, last.extent.end_line, last.extent.end_col)
    return Span(file, line, col, last.end_line, last.end_column)


def _parenthesised(_f: Any, _rule: str, children: list[Any], _meta: Any) -> _Built:
    """`( expr )`: the expression itself, its extent grown to the brackets (no node of its own)."""
    lpar, inner, rpar = children
    extent = Span(inner.extent.file, lpar.line, lpar.column, rpar.end_line, rpar.end_column)
    return _Built(inner.value, extent, inner.line, inner.column, inner.height, inner.kids)


@v_args(wrapper=_node)
class _Builder(Transformer[Token, Any]):
    """Builds cnnspec.syntax.ast nodes as the parser reduces; nothing more.

    Each rule's method takes the span of what the rule matched and the values it reads (see
    _node), built bottom up. The builder keeps no state: one serves every parse and thread;
    the file name and the errors found are the running parse's (_CURRENT).
    """

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        # Only rules that Lark inlines into their parent (_stmt, x* ...) come here; it reads the children.
        return Tree(data, children)

    # items

    def start(self, span: Span, *items: Any) -> ast.Module:
        return ast.Module(span.file, list(items))

    def import_stmt(self, span: Span, path: Token) -> ast.Import:
        return ast.Import(_string(path), span)

    def block_def(self, span: Span, name: Token, *params_body: list) -> ast.BlockDef:
        params, body = params_body if len(params_body) == 2 else ([], params_body[0])
        return ast.BlockDef(str(name), params, body, span, _tok_span(span.file, name))

    def network_def(self, span: Span, name: Token, *params_body: list) -> ast.NetworkDef:
        params, body = params_body if len(params_body) == 2 else ([], params_body[0])
        return ast.NetworkDef(str(name), params, body, span, _tok_span(span.file, name))

    def network_alias(self, span: Span, name: Token, target: Token, args: list | None = None) -> ast.NetworkAlias:
        target_span, name_span = _tok_span(span.file, target), _tok_span(span.file, name)
        return ast.NetworkAlias(str(name), str(target), target_span, args or [], span, name_span)

    def params(self, span: Span, *params: ast.Param) -> list[ast.Param]:
        return list(params)

    def param(self, span: Span, name: Token, default: ast.Expr | None = None) -> ast.Param:
        return ast.Param(str(name), default, span)

    def body(self, span: Span, *stmts: ast.Stmt) -> list[ast.Stmt]:
        return list(stmts)

    # statements
    def input_stmt(self, span: Span, *dims: ast.Expr) -> ast.InputStmt:
        return ast.InputStmt(span, list(dims))

    def init_stmt(self, span: Span, kind: Token, *rest: Any) -> ast.InitStmt:
        pattern = rest[0] if isinstance(rest[0], Token) else None
        assigns = list(rest[1:] if pattern is not None else rest)
        return ast.InitStmt(
            span,
            str(kind),
            _tok_span(span.file, kind),
            assigns,
            _string(pattern) if pattern is not None else None,
            _tok_span(span.file, pattern) if pattern is not None else None,
        )

    def init_assign(self, span: Span, target: Token, scheme: Token, args: list | None = None) -> ast.InitAssign:
        return ast.InitAssign(str(target), str(scheme), args or [], span)

    def labelled(self, span: Span, label: ast.Label, stmt: ast.Stmt) -> ast.Stmt:
        stmt.label = label
        stmt.span = span
        return stmt

    def label(self, span: Span, tok: Token) -> ast.Label:
        if tok.type == "STRING":
            text = _string(tok)
            return ast.Label(text, True, span, _template_parts(tok, span) if "{" in text else [])
        return ast.Label(str(tok), False, span)

    def call_stmt(self, span: Span, name: Token, *args_repeat: Any) -> ast.CallStmt:
        _not_a_clause(span.file, name)
        args = args_repeat[0] if args_repeat and isinstance(args_repeat[0], list) else []
        repeat = args_repeat[-1] if args_repeat and not isinstance(args_repeat[-1], list) else None
        return ast.CallStmt(span, str(name), _tok_span(span.file, name), args, repeat)

    def repeat(self, span: Span, expr: ast.Expr) -> ast.Expr:
        return expr

    def group_stmt(self, span: Span, name: Token, *args_body: Any) -> ast.GroupStmt:
        _not_a_clause(span.file, name)
        # `name { ... }` gives (body,); `name(...) { ... }` gives (args or None, body).
        args = (args_body[0] or []) if len(args_body) == 2 else None
        return ast.GroupStmt(span, str(name), _tok_span(span.file, name), args_body[-1], args)

    def anon_group(self, span: Span, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(span, None, None, body)

    def residual_stmt(self, span: Span, body: list, shortcut: ast.Shortcut | None = None) -> ast.ResidualStmt:
        return ast.ResidualStmt(span, body, shortcut)

    def shortcut(self, span: Span, *name_body: Any) -> ast.Shortcut:
        name = str(name_body[0]) if len(name_body) == 2 else None
        return ast.Shortcut(name, name_body[-1], span)

    def if_stmt(self, span: Span, cond: ast.Expr, then: list, orelse: list | None = None) -> ast.IfStmt:
        return ast.IfStmt(span, cond, then, orelse)

    def else_clause(self, span: Span, body: Any) -> list[ast.Stmt]:
        return body if isinstance(body, list) else [body]

    def for_stmt(self, span: Span, var: Token, it: ast.Expr, body: list) -> ast.ForStmt:
        return ast.ForStmt(span, str(var), it, body)

    def let_stmt(self, span: Span, name: Token, value: ast.Expr) -> ast.LetStmt:
        return ast.LetStmt(span, str(name), value)

    def aux_stmt(self, span: Span, *args_body: list) -> ast.AuxStmt:
        args = args_body[0] if len(args_body) == 2 else []
        return ast.AuxStmt(span, args, args_body[-1])

    def cond_expr(self, span: Span, then: ast.Expr, cond: ast.Expr, orelse: ast.Expr) -> ast.CondExpr:
        return ast.CondExpr(span, cond, then, orelse)

    def args(self, span: Span, *args: ast.Arg) -> list[ast.Arg]:
        return list(args)

    def positional(self, span: Span, value: ast.Expr) -> ast.Arg:
        return ast.Arg(None, value, span)

    def keyword(self, span: Span, name: Token, value: ast.Expr) -> ast.Arg:
        return ast.Arg(str(name), value, span)

    # expressions
    def or_op(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "or", a, b)

    def and_op(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "and", a, b)

    def not_op(self, span: Span, a: ast.Expr) -> ast.Unary:
        return ast.Unary(span, "not", a)

    def compare(self, span: Span, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, str(op), a, b)

    def binary(self, span: Span, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, str(op), a, b)

    def pow(self, span: Span, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(span, "**", a, b)

    def neg(self, span: Span, _minus: Token, a: ast.Expr) -> ast.Unary:
        return ast.Unary(span, "-", a)

    def index(self, span: Span, obj: ast.Expr, idx: ast.Expr) -> ast.Index:
        return ast.Index(span, obj, idx)

    def attribute(self, span: Span, obj: ast.Expr, name: Token) -> ast.Attribute:
        return ast.Attribute(span, obj, str(name))

    def number(self, span: Span, tok: Token) -> ast.Num:
        s = str(tok)
        value: int | float
        if any(c in s for c in ".eE"):
            value = float(s)
            ok = math.isfinite(value)
        else:
            # Python refuses to convert ints of more than 4300 digits; 2^62 is the language's limit anyway.
            value = int(s) if len(s) <= 19 else 0
            ok = len(s) <= 19 and value <= MAX_INT
        if not ok:
            _CURRENT.get().error(
                Diagnostic(
                    E005,
                    f"the number {s if len(s) <= 24 else s[:20] + '…'} is out of range",
                    span,
                    help=["numbers may be at most 2^62 (ints) or about 1.8e308 (floats)"],
                )
            )
            value = 0
        return ast.Num(span, value)

    def string(self, span: Span, tok: Token) -> ast.Str:
        return ast.Str(span, _string(tok))

    def true(self, span: Span) -> ast.Bool:
        return ast.Bool(span, True)

    def false(self, span: Span) -> ast.Bool:
        return ast.Bool(span, False)

    def block_input(self, span: Span) -> ast.BlockInput:
        return ast.BlockInput(span)

    def name(self, span: Span, tok: Token) -> ast.Name:
        return ast.Name(span, str(tok))

    def func_call(self, span: Span, name: Token, args: list | None = None) -> ast.FuncCall:
        return ast.FuncCall(span, str(name), args or [])

    def list(self, span: Span, *items: ast.Expr) -> ast.ListExpr:
        if len(items) > MAX_LIST_ITEMS:
            _CURRENT.get().error(
                Diagnostic(
                    E610,
                    f"this list has {len(items):,} items, more than the limit of {MAX_LIST_ITEMS:,} for a written list",
                    span,
                    help=["build a long list with `range` or a comprehension, `[f(i) for i in range(n)]`"],
                )
            )
        return ast.ListExpr(span, [*items])

    def list_comp(self, span: Span, item: ast.Expr, var: Token, it: ast.Expr) -> ast.ListComp:
        return ast.ListComp(span, item, str(var), it)

    @v_args(wrapper=_parenthesised)
    def atom(self) -> None:
        """`( expr )`, the one rule with brackets that makes no node (see _parenthesised)."""


#: Clauses that continue the statement before them, and what they continue.
_CLAUSES = {"else": "if", "shortcut": "residual"}


def _not_a_clause(file: str, name: Token) -> None:
    """E002 for `else` or `shortcut` standing as a statement of its own: on the line after the
    `}` it belongs to, it would otherwise read as a group or layer named `else` that always runs."""
    owner = _CLAUSES.get(str(name))
    if owner is None:
        return
    _CURRENT.get().error(
        Diagnostic(
            E002,
            f"`{name}` starts a statement here, but it only continues the `{owner}` statement before it",
            _tok_span(file, name),
            help=[f"put `{name}` on the same line as the `}}` that closes the `{owner}` body: `}} {name} {{`"],
        )
    )


_BRACED = re.compile(r"\{([^{}]*)\}")


def _template_parts(tok: Token, span: Span) -> list[str | ast.Expr]:
    """A string label's literal text and the expressions in its braces (`"block{s}-{i}"`), each
    expression parsed where it stands in the file; [] when the braces hold only a `{N}` of digits.

    A piece that is not an expression is reported (E218) and reads as its text.
    """
    raw = str(tok)[1:-1]
    parts: list[str | ast.Expr] = []
    literal, last, exprs = "", 0, 0
    for m in _BRACED.finditer(raw):
        piece = m.group(1)
        if piece.strip().isascii() and piece.strip().isdigit():
            continue  # the repetition's {N}: part of the literal text
        literal += raw[last : m.start()]
        parts.append(_unquote_text(literal))
        literal, last = "", m.end()
        col = (tok.column or 1) + 1 + m.start(1)
        where = Span(span.file, tok.line or 1, col, tok.line or 1, col + len(piece))
        try:
            # Padded to its column and moved to its line, so that its spans point into the file.
            expr = parse_expr(" " * (col - 1) + piece, span.file)
        except SpecError:
            _CURRENT.get().error(
                Diagnostic(
                    E218,
                    f"`{{{piece}}}` in the naming template is not an expression",
                    where,
                    help=['write an expression in braces, `"block{i}"`, or one number for a repetition, `"layer{1}"`'],
                )
            )
            parts.append("{" + piece + "}")
            continue
        parts.append(_moved(expr, (tok.line or 1) - 1))
        exprs += 1
    parts.append(_unquote_text(literal + raw[last:]))
    return [p for p in parts if p != ""] if exprs else []


def _unquote_text(raw: str) -> str:
    try:
        return _unquote(f'"{raw}"')
    except (ValueError, SyntaxError):
        return raw  # the whole string's escape is reported by _string


def _moved(node: Any, lines: int) -> Any:
    """node with every span in it moved down by lines (an expression parsed on its own, line 1)."""
    if not lines:
        return node
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(n)
            continue
        for f in getattr(type(n), "__dataclass_fields__", {}):
            v = getattr(n, f)
            if isinstance(v, Span):
                setattr(n, f, v._replace(line=v.line + lines, end_line=v.end_line + lines))
            elif isinstance(v, (list, ast.Expr, ast.Arg)):
                stack.append(v)
    return node


def _string(tok: Token) -> str:
    """The value of a string literal; an unknown escape is reported (E004) and reads as ""."""
    try:
        return _unquote(tok)
    except (ValueError, SyntaxError):
        state = _CURRENT.get()
        state.error(
            Diagnostic(
                E004,
                f"the string {tok} has an escape sequence the language does not know",
                _tok_span(state.file, tok),
                help=['strings allow \\\\, \\", \\n and \\t; write a backslash as \\\\'],
            )
        )
        return ""


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


def _unquote(tok: Token | str) -> str:
    """The value of a string literal; ValueError for an escape other than \\\\ \\" \\n \\t.

    Decoded by hand, not with Python's literal rules, so that no Python escape
    (\\N{...}, \\x, octal) means anything in a spec.
    """
    text = str(tok)[1:-1]
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt not in _ESCAPES:
                raise ValueError(f"unknown escape \\{nxt}")
            out.append(_ESCAPES[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
