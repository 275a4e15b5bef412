"""Text to AST: the Lark LALR parser, its post-lexer, and the AST builder.

The transformer only builds nodes from cnnspec.syntax.ast; nothing here knows what
a layer or a block means. Syntax errors become diagnostics that say what was
expected in words.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cnnspec.diagnostics import Diagnostic, Note, SpecError
from cnnspec.diagnostics.codes import E001, E002, E003, E004, E005, E606, E607
from cnnspec.semantics.values import MAX_INT
from cnnspec.syntax import ast
from cnnspec.syntax.source import SourceMap, Span


def grammar_text() -> str:
    """The grammar shipped with the package (grammar/cnnspec.lark in the source tree)."""
    try:
        return resources.files("cnnspec.grammar").joinpath("cnnspec.lark").read_text()
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent / "grammar" / "cnnspec.lark").read_text()


#: Deepest nesting of brackets and of the parse tree (expressions, statements)
#: the parser accepts. Real specs stay below 20; the limit keeps the recursive
#: tree builder and evaluator far from Python's recursion limit on any input.
MAX_NESTING = 200
#: Largest spec text, in characters (about 16 MiB).
MAX_SOURCE = 16 * 1024 * 1024
#: Syntax errors reported per file before giving up.
MAX_SYNTAX_ERRORS = 10

_OPENERS = {"LPAR": "RPAR", "LSQB": "RSQB", "LBRACE": "RBRACE"}
_CLOSERS = {v: k for k, v in _OPENERS.items()}


class _TooDeep(Exception):
    """Brackets nested deeper than MAX_NESTING; carries the bracket that went too deep."""

    def __init__(self, tok: Token) -> None:
        super().__init__("too deep")
        self.tok = tok


class _Brackets:
    """The state of one parse that the post-lexer keeps and syntax-error recovery reads.

    stack: the brackets open at the current token; last: the previous token
    passed on. Made anew for every parse() call and never shared.
    """

    def __init__(self) -> None:
        self.stack: list[Token] = []
        self.last: Token | None = None


#: The _Brackets of the parse running in this thread (and context). Lark takes the post-lexer
#: once, when the parser is built, and hands it every parse's token stream; a ContextVar is how
#: that one shared post-lexer reaches the state of the parse it is serving without sharing it.
_CURRENT: ContextVar[_Brackets] = ContextVar("cnnspec_parse_brackets")


class _Separators:
    """Post-lexer: newlines inside () and [] are not separators; runs of them fold into one.

    It also drops separators right after `{`, so a body may open on its own
    line. Tokens are never held back: the contextual lexer lexes each token in
    the parser state that the previous one left. The object holds no state, so
    one Lark instance serves every thread: what a parse must remember between
    tokens (open brackets, the previous token) is that parse's _Brackets. It
    is not reset in process(): Lark restarts the token stream after each
    recovered syntax error, and the brackets stay open.
    """

    always_accept = ("_SEP",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        """Filter one parse's tokens (Lark's post-lexer interface)."""
        state = _CURRENT.get(None) or _Brackets()  # Lark.lex() outside parse(): nobody reads the state
        stack = state.stack
        for tok in stream:
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
            state.last = tok
            yield tok


#: Guards the first build of the parser, so that threads starting together build it once.
_BUILD_LOCK = threading.Lock()


def _parser() -> Lark:
    """The one Lark parser, built on first use (building it costs a cold start, see _build_parser).

    Sharing it between threads is safe: it is never changed after it is built, each
    parse() makes its own lexer and parser state (LexerThread, ParserState), the
    post-lexer keeps no state (_Separators), and the tree builder's callbacks are
    pure. The contextual lexer builds each state's scanner on first use without a
    lock; two threads doing so at once build equal scanners (there are no lexer
    callbacks to add), so either one serves.
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
        propagate_positions=True,
        maybe_placeholders=True,
        cache=True,  # a pickled parser in the temp dir: saves ~0.2 s at every start
    )


def parse(text: str, file: str, sources: SourceMap | None = None) -> ast.Module:
    """Parse one file's text into an ast.Module, or raise SpecError.

    Nothing is cached: a check parses each file it reads once (the loader sees to
    that), and the next check reads the files again, as they may have changed.
    """
    if sources is not None:
        sources.add(file, text)
    tree = _parse_tree(text, file, "start", sources)
    return _build(tree, file, sources)


def parse_expr(text: str, file: str = "<--set>") -> ast.Expr:
    """Parse one expression, e.g. the value of `--set layers=[3, 4, 6, 3]`; raises SpecError."""
    sources = SourceMap()
    sources.add(file, text)
    tree = _parse_tree(text, file, "expr", sources)
    return _build(tree, file, sources)


def _parse_tree(text: str, file: str, start: str, sources: SourceMap | None) -> Any:
    """The Lark tree of text, or SpecError with every independent syntax error."""
    if len(text) > MAX_SOURCE:
        span = Span(file, 1, 1, 1, 2)
        raise SpecError(
            [Diagnostic(E607, f"{file} has {len(text):,} characters, more than the limit of {MAX_SOURCE:,}", span)],
            sources,
        )
    brackets = _Brackets()
    recovery = _Recovery(text, file, brackets)
    tree = None
    token = _CURRENT.set(brackets)
    try:
        tree = _parser().parse(text, start=start, on_error=recovery.handle)
    except _TooDeep as e:
        recovery.diags.append(_too_deep(file, e.tok.line or 1, e.tok.column or 1, "brackets are"))
    except UnexpectedInput as e:
        if not recovery.diags:
            recovery.diags.append(syntax_diagnostic(e, text, file))
    except Exception:
        # Recovery itself failed on a strange input; what was found so far stands.
        if not recovery.diags:
            raise
    finally:
        _CURRENT.reset(token)
    if recovery.diags:
        raise SpecError(recovery.diags, sources)
    deep = _too_deep_tree(tree)
    if deep is not None:
        raise SpecError([_too_deep(file, deep[0], deep[1], "the statements and expressions are")], sources)
    return tree


def _build(tree: Any, file: str, sources: SourceMap | None) -> Any:
    """The AST of a parse tree (nesting is bounded by MAX_NESTING, so the recursive walk is safe)."""
    builder = _Builder(file)
    result = builder.transform(tree)
    if builder.errors:
        raise SpecError(builder.errors, sources)
    return result


def _too_deep(file: str, line: int, col: int, what: str) -> Diagnostic:
    return Diagnostic(
        E606,
        f"{what} nested more than {MAX_NESTING} levels deep here",
        Span(file, line, col, line, col + 1),
        help=["no hand-written spec nests this deep; split the expression or the statement with `let` or blocks"],
    )


def _too_deep_tree(tree: Any) -> tuple[int, int] | None:
    """The position of the first node nested deeper than MAX_NESTING, or None (iterative walk)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            meta = node.meta
            return (getattr(meta, "line", 1), getattr(meta, "column", 1))
        for child in node.children:
            if hasattr(child, "children"):
                stack.append((child, depth + 1))
    return None


class _Recovery:
    """Lark's on_error handler: reports a syntax error, then resumes at the next line.

    After an error inside a line, the rest of that line is skipped (its errors
    are not reported: they are echoes of the first). At a line end or a `}`
    the parser's stack is unwound to a state that accepts it, so the next
    statement parses normally. A bracket left open when a new line starts a
    statement is reported at the bracket (E003) and closed.
    """

    def __init__(self, text: str, file: str, post: _Brackets) -> None:
        self.text = text
        self.file = file
        self.post = post
        self.diags: list[Diagnostic] = []
        self.lines: set[int] = set()

    def _record(self, d: Diagnostic) -> None:
        line = d.span.line if d.span else 0
        if line not in self.lines:
            self.lines.add(line)
            self.diags.append(d)

    def handle(self, e: UnexpectedInput) -> bool:
        """Record e; return whether parsing should go on."""
        if len(self.diags) >= MAX_SYNTAX_ERRORS:
            return False
        if isinstance(e, UnexpectedCharacters):
            self._record(syntax_diagnostic(e, self.text, self.file))
            return True  # Lark skips the character
        if not isinstance(e, UnexpectedToken) or e.token.type == "$END":
            self._record(syntax_diagnostic(e, self.text, self.file))
            return False
        tok = e.token
        ip = e.interactive_parser
        post = self.post
        opener = post.stack[-1] if post.stack and post.stack[-1].type in ("LPAR", "LSQB") else None
        pos = tok.start_pos or 0
        new_line = self.text[self.text.rfind("\n", 0, pos) + 1 : pos].strip() == ""
        if opener is not None and (new_line or tok.type in ("LBRACE", "RBRACE")):
            self._record(_unclosed(opener, tok, self.file))
            while post.stack and post.stack[-1].type in ("LPAR", "LSQB"):
                post.stack.pop()
            if _unwind_feed(ip, Token.new_borrow_pos("_SEP", "\n", tok)):
                _unwind_feed(ip, tok, pop=False)  # the token starts the next statement
                return True
            return False
        self._record(syntax_diagnostic(e, self.text, self.file))
        if tok.type in ("_SEP", "RBRACE"):
            return _unwind_feed(ip, tok)
        return True  # drop the token; the rest of the line follows


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


def syntax_diagnostic(e: UnexpectedInput, text: str, file: str) -> Diagnostic:
    """Turn a Lark error into a diagnostic that says, in words, what was expected."""
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


@v_args(meta=True, inline=True)
class _Builder(Transformer[Token, Any]):
    """Builds cnnspec.syntax.ast nodes from the parse tree; nothing more.

    Each rule's method takes the node's meta and its children, built bottom
    up. One builder per parse: it keeps the file name and the errors found.
    """

    __visit_tokens__ = False  # tokens stay tokens; the rules read them

    def __init__(self, file: str) -> None:
        super().__init__(visit_tokens=False)
        self.file = file
        #: Errors in literals (bad escapes, numbers out of range), all reported together.
        self.errors: list[Diagnostic] = []

    def __default__(self, data: str, children: list[Any], meta: Any) -> Any:
        # An `expr` start whose rule is inlined arrives here as a one-child tree.
        assert len(children) == 1, (data, children)
        return children[0]

    def _span(self, meta: Any) -> Span:
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    # items

    def start(self, meta: Any, *items: Any) -> ast.Module:
        return ast.Module(self.file, [i for i in items if i is not None])

    def _unquote(self, tok: Token) -> str:
        try:
            return _unquote(tok)
        except (ValueError, SyntaxError):
            self.errors.append(
                Diagnostic(
                    E004,
                    f"the string {tok} has an escape sequence the language does not know",
                    _tok_span(self.file, tok),
                    help=['strings allow \\\\, \\", \\n and \\t; write a backslash as \\\\'],
                )
            )
            return ""

    def import_stmt(self, meta: Any, path: Token) -> ast.Import:
        return ast.Import(self._unquote(path), self._span(meta))

    def block_def(self, meta: Any, name: Token, params: list | None, body: list) -> ast.BlockDef:
        return ast.BlockDef(str(name), params or [], body, self._span(meta), _tok_span(self.file, name))

    def network_def(self, meta: Any, name: Token, params: list | None, body: list) -> ast.NetworkDef:
        return ast.NetworkDef(str(name), params or [], body, self._span(meta), _tok_span(self.file, name))

    def network_alias(self, meta: Any, name: Token, target: Token, args: list | None) -> ast.NetworkAlias:
        target_span, name_span = _tok_span(self.file, target), _tok_span(self.file, name)
        return ast.NetworkAlias(str(name), str(target), target_span, args or [], self._span(meta), name_span)

    def params(self, meta: Any, *params: ast.Param) -> list[ast.Param]:
        return list(params)

    def param(self, meta: Any, name: Token, default: ast.Expr | None) -> ast.Param:
        return ast.Param(str(name), default, self._span(meta))

    def body(self, meta: Any, *stmts: Any) -> list[ast.Stmt]:
        return [s for s in stmts if s is not None]

    # statements
    def input_stmt(self, meta: Any, *dims: ast.Expr) -> ast.InputStmt:
        return ast.InputStmt(self._span(meta), list(dims))

    def init_stmt(self, meta: Any, kind: Token, pattern: Token | None, *assigns: ast.InitAssign) -> ast.InitStmt:
        return ast.InitStmt(
            self._span(meta),
            str(kind),
            _tok_span(self.file, kind),
            list(assigns),
            self._unquote(pattern) if pattern is not None else None,
            _tok_span(self.file, pattern) if pattern is not None else None,
        )

    def init_assign(self, meta: Any, target: Token, scheme: Token, args: list | None) -> ast.InitAssign:
        return ast.InitAssign(str(target), str(scheme), args or [], self._span(meta))

    def labelled(self, meta: Any, label: ast.Label, stmt: ast.Stmt) -> ast.Stmt:
        stmt.label = label
        stmt.span = label.span.to(stmt.span)
        return stmt

    def label(self, meta: Any, tok: Token) -> ast.Label:
        if tok.type == "STRING":
            return ast.Label(self._unquote(tok), True, self._span(meta))
        return ast.Label(str(tok), False, self._span(meta))

    def call_stmt(self, meta: Any, name: Token, args: list | None, repeat: ast.Expr | None) -> ast.CallStmt:
        return ast.CallStmt(self._span(meta), str(name), _tok_span(self.file, name), args or [], repeat)

    def repeat(self, meta: Any, expr: ast.Expr) -> ast.Expr:
        return expr

    def group_stmt(self, meta: Any, name: Token, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(self._span(meta), str(name), _tok_span(self.file, name), body)

    def anon_group(self, meta: Any, body: list) -> ast.GroupStmt:
        return ast.GroupStmt(self._span(meta), None, None, body)

    def residual_stmt(self, meta: Any, body: list, shortcut: ast.Shortcut | None) -> ast.ResidualStmt:
        return ast.ResidualStmt(self._span(meta), body, shortcut)

    def shortcut(self, meta: Any, name: Token | None, body: list) -> ast.Shortcut:
        return ast.Shortcut(str(name) if name is not None else None, body, self._span(meta))

    def if_stmt(self, meta: Any, cond: ast.Expr, then: list, orelse: list | None) -> ast.IfStmt:
        return ast.IfStmt(self._span(meta), cond, then, orelse)

    def else_clause(self, meta: Any, body: Any) -> list[ast.Stmt]:
        return body if isinstance(body, list) else [body]

    def for_stmt(self, meta: Any, var: Token, it: ast.Expr, body: list) -> ast.ForStmt:
        return ast.ForStmt(self._span(meta), str(var), it, body)

    def let_stmt(self, meta: Any, name: Token, value: ast.Expr) -> ast.LetStmt:
        return ast.LetStmt(self._span(meta), str(name), value)

    def aux_stmt(self, meta: Any, args: list | None, body: list) -> ast.AuxStmt:
        return ast.AuxStmt(self._span(meta), args or [], body)

    def cond_expr(self, meta: Any, then: ast.Expr, cond: ast.Expr, orelse: ast.Expr) -> ast.CondExpr:
        return ast.CondExpr(self._span(meta), cond, then, orelse)

    def args(self, meta: Any, *args: ast.Arg) -> list[ast.Arg]:
        return list(args)

    def positional(self, meta: Any, value: ast.Expr) -> ast.Arg:
        return ast.Arg(None, value, self._span(meta))

    def keyword(self, meta: Any, name: Token, value: ast.Expr) -> ast.Arg:
        return ast.Arg(str(name), value, self._span(meta))

    # expressions
    def or_op(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "or", a, b)

    def and_op(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "and", a, b)

    def not_op(self, meta: Any, a: ast.Expr) -> ast.Unary:
        return ast.Unary(self._span(meta), "not", a)

    def compare(self, meta: Any, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), str(op), a, b)

    def binary(self, meta: Any, a: ast.Expr, op: Token, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), str(op), a, b)

    def pow(self, meta: Any, a: ast.Expr, b: ast.Expr) -> ast.Binary:
        return ast.Binary(self._span(meta), "**", a, b)

    def neg(self, meta: Any, _minus: Token, a: ast.Expr) -> ast.Unary:
        return ast.Unary(self._span(meta), "-", a)

    def index(self, meta: Any, obj: ast.Expr, idx: ast.Expr) -> ast.Index:
        return ast.Index(self._span(meta), obj, idx)

    def attribute(self, meta: Any, obj: ast.Expr, name: Token) -> ast.Attribute:
        return ast.Attribute(self._span(meta), obj, str(name))

    def number(self, meta: Any, tok: Token) -> ast.Num:
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
            self.errors.append(
                Diagnostic(
                    E005,
                    f"the number {s if len(s) <= 24 else s[:20] + '…'} is out of range",
                    self._span(meta),
                    help=["numbers may be at most 2^62 (ints) or about 1.8e308 (floats)"],
                )
            )
            value = 0
        return ast.Num(self._span(meta), value)

    def string(self, meta: Any, tok: Token) -> ast.Str:
        return ast.Str(self._span(meta), self._unquote(tok))

    def true(self, meta: Any) -> ast.Bool:
        return ast.Bool(self._span(meta), True)

    def false(self, meta: Any) -> ast.Bool:
        return ast.Bool(self._span(meta), False)

    def block_input(self, meta: Any) -> ast.BlockInput:
        return ast.BlockInput(self._span(meta))

    def name(self, meta: Any, tok: Token) -> ast.Name:
        return ast.Name(self._span(meta), str(tok))

    def func_call(self, meta: Any, name: Token, args: list | None) -> ast.FuncCall:
        return ast.FuncCall(self._span(meta), str(name), args or [])

    def list(self, meta: Any, *items: ast.Expr | None) -> ast.ListExpr:
        return ast.ListExpr(self._span(meta), [i for i in items if i is not None])

    def list_comp(self, meta: Any, item: ast.Expr, var: Token, it: ast.Expr) -> ast.ListComp:
        return ast.ListComp(self._span(meta), item, str(var), it)


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
