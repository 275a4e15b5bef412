"""The state of one parse, shared by the post-lexer, the AST builder and error recovery.

Lark takes the post-lexer and the builder once, when the parser is built, and
calls them for every parse; each parse's own state reaches them through a
ContextVar, so threads parsing at once never share it.
"""

from __future__ import annotations

from contextvars import ContextVar

from lark import Token

from cnnspec.diagnostics import Diagnostic
from cnnspec.syntax.limits import MAX_SYNTAX_ERRORS
from cnnspec.syntax.source import Span


class ParseState:
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


#: The ParseState of the parse running in this thread (and context): how the one post-lexer and
#: builder Lark holds reach the state of the parse they are serving without sharing it.
CURRENT: ContextVar[ParseState] = ContextVar("cnnspec_parse_state")

#: Words that start a top-level item; a line inside a body that starts with one is a body left open.
TOP_LEVEL = frozenset({"block", "network", "import"})


def token_pos(tok: Token) -> tuple[int, int]:
    """Where a token starts, as (line, column): the key of a `{` in ParseState.braces."""
    return tok.line or 0, tok.column or 0


def tok_span(file: str, tok: Token) -> Span:
    """The span of a token in file."""
    return Span(file, tok.line or 0, tok.column or 0, tok.end_line or tok.line or 0, tok.end_column or 0)
