"""Syntax-error recovery: what the parser expected, in words, and where parsing resumes.

Lark calls Recovery.handle for each error; it reports the first error of a line,
names the bracket or `{` left open when the layout shows one, and unwinds the
parser to the next statement, so one run reports every independent error.
"""

from __future__ import annotations

from typing import Any

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from cnnspec.diagnostics import Diagnostic, Note
from cnnspec.diagnostics.codes import E001, E002, E003
from cnnspec.syntax.limits import MAX_ERROR_EVENTS, MAX_SYNTAX_ERRORS
from cnnspec.syntax.source import Span
from cnnspec.syntax.state import TOP_LEVEL, ParseState, tok_span, token_pos


class Recovery:
    """Lark's on_error handler: reports a syntax error, then resumes at the next line.

    After an error inside a line, the rest of that line is skipped (its errors
    are not reported: they are echoes of the first). At a line end or a `}`
    the parser's stack is unwound to a state that accepts it, so the next
    statement parses normally. A bracket left open when a new line starts a
    statement is reported at the bracket (E003) and closed.
    """

    def __init__(self, text: str, file: str, post: ParseState) -> None:
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
        if suspect is not None and token_pos(tok) >= token_pos(suspect[1]) and tok.line not in self.lines:
            # The layout says a body was left open above: name its `{`, not the token that
            # only shows it, perhaps many lines further on.
            post.reported.add(token_pos(suspect[0]))
            post.suspect = None
            where = f"unexpected {_token_text(tok)} here, still inside that body"
            self._add(_unclosed_brace(suspect, self.file, tok_span(self.file, tok), where))
            self.lines.add(tok.line or 0)
        elif post.first is not None and str(post.first) in TOP_LEVEL and _open_reported(post):
            self.lines.add(tok.line or 0)  # the next item after a body reported open: an echo of that error
        else:
            self._record(e)
        if tok.type in ("_SEP", "RBRACE"):
            return _unwind_feed(ip, tok)
        return True  # drop the token; the rest of the line follows


def _open_reported(post: ParseState) -> bool:
    """Whether a `{` already reported as never closed is still open."""
    return any(t.type == "LBRACE" and token_pos(t) in post.reported for t in post.stack)


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
        notes=[Note(f"expected `{close}` before {_token_text(tok)}", tok_span(file, tok))],
        help=[f"add `{close}` at the end of line {line}"],
    )


def _unclosed_brace(suspect: tuple[Token, Token], file: str, where: Span, what: str) -> Diagnostic:
    """E003 for a `{` whose body the layout says ended without a `}` (ParseState.suspect); where,
    what: the place the parser noticed, and what it says there."""
    opener, first = suspect
    line, col = opener.line or 1, opener.column or 1
    at = first.line or 1
    notes = []
    if at != where.line:
        why = "starts a new item" if str(first) in TOP_LEVEL else "is indented no deeper than the line of the `{`"
        notes.append(Note(f"the body seems to end before line {at}, which {why}", tok_span(file, first)))
    notes.append(Note(what, where))
    return Diagnostic(
        E003,
        "this `{` is never closed",
        Span(file, line, col, line, col + 1),
        notes=notes,
        help=[f"add `}}` before line {at}"],
    )


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


def syntax_diagnostic(e: UnexpectedInput, text: str, file: str, state: ParseState | None = None) -> Diagnostic:
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
