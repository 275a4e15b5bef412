"""Syntax highlighting for .cnn specs: a Pygments lexer, registered as the `cnn` / `cnnspec` lexer.

    ```cnn
    conv1: conv(64, 7, stride = 2, padding = 3, bias = false)
    ```

pyproject.toml registers `CnnLexer` under the `pygments.lexers` entry point, so once cnnspec is
installed Pygments, Markdown (pymdownx.highlight, as the MkDocs site uses), Sphinx and
`pygmentize -l cnn` find it by its aliases or by a file's `.cnn` suffix. The token classes follow
grammar/cnnspec.lark; grammar/cnnspec.tmLanguage.json gives editors the same classes as TextMate
scopes (tests/test_highlight.py keeps the two in step).

Names are classified after lexing, from the tables the compiler itself reads (the layer table, the
expression built-ins, the init schemes), so a layer kind added to the table is highlighted with no
change here and a registered user kind is highlighted in the process that registered it. Reading them
costs nothing extra: importing any cnnspec module imports the package, which already loads all three.
Nothing here imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pygments.lexer import RegexLexer, bygroups, default, include, words
from pygments.token import (
    Comment,
    Keyword,
    Name,
    Number,
    Operator,
    Punctuation,
    String,
    Whitespace,
    _TokenType,
)

from cnnspec.layers.builtin import BUILTIN
from cnnspec.layers.init import SCHEMES
from cnnspec.layers.registry import all_kinds
from cnnspec.semantics.values import BUILTINS

__all__ = ["KEYWORDS", "TEXTMATE_SCOPES", "TOKEN_CLASSES", "CnnLexer", "textmate_grammar"]

_NAME = r"[^\W\d]\w*"
# The grammar's STRING (unrolled, so a long string is one pass).
_STRING = r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
#: Words the grammar reserves (`x` only between the sizes of `input:`; it is a name elsewhere).
KEYWORDS = (
    "block", "network", "import", "input", "init", "let", "residual", "shortcut",
    "if", "else", "for", "in", "aux",
)  # fmt: skip
_FLOAT = r"(?:\d+\.\d+|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+"
_OPERATOR = r"\*\*|//|==|!=|<=|>=|[-+*/%<>=]"
_DEFINED = re.compile(rf"\b(?:block|network)[ \t]+({_NAME})")

#: Every token class the lexer yields, with what it marks (tests check each is produced by the stock specs).
TOKEN_CLASSES: dict[_TokenType, str] = {
    Comment.Single: "a `#` comment",
    Keyword: "a reserved word, and `x` in `input: 3 x 224 x 224`",
    Keyword.Constant: "`true`, `false`",
    Operator.Word: "`and`, `or`, `not`",
    Name.Builtin: "a layer kind (the layer table)",
    Name.Function: "an expression built-in (`int`, `divisible`, ...) or an init scheme (`kaiming_normal`, ...)",
    Name.Class: "a block or network name: defined in the text, or capitalised (the convention for blocks)",
    Name.Label: "a statement's label (`conv1:`), a name or a string",
    Name: "any other name: parameters, `let` names, loop variables, arguments' keywords",
    Number.Integer: "an integer",
    Number.Float: "a number with a fraction or an exponent",
    String.Double: "a string",
    Operator: "`=`, arithmetic and comparison operators",
    Punctuation: "brackets, `,` `;` `:` `.`",
    Whitespace: "spaces, newlines and line continuations",
}


class CnnLexer(RegexLexer):
    """Pygments lexer for cnnspec's .cnn language (grammar/cnnspec.lark)."""

    name = "cnnspec"
    aliases = ["cnn", "cnnspec"]  # noqa: RUF012 (Pygments reads these class attributes)
    filenames = ["*.cnn"]  # noqa: RUF012
    mimetypes = ["text/x-cnnspec"]  # noqa: RUF012
    url = "https://github.com/cnnspec/cnnspec"

    tokens = {  # noqa: RUF012
        "root": [
            include("space"),
            (r"(input)([ \t]*)(:)", bygroups(Keyword, Whitespace, Punctuation), "input"),
            # `init conv "layer*.bn2": ...`: the kind (or block) the rule is for, and its module-path pattern.
            (
                rf"(init)([ \t]+)({_NAME})(?:([ \t]+)({_STRING}))?",
                bygroups(Keyword, Whitespace, Name, Whitespace, String.Double),
            ),
            (
                rf"(network)([ \t]+)({_NAME})([ \t]*)(=)([ \t]*)({_NAME})",
                bygroups(Keyword, Whitespace, Name.Class, Whitespace, Operator, Whitespace, Name.Class),
            ),
            (rf"(block|network)([ \t]+)({_NAME})", bygroups(Keyword, Whitespace, Name.Class)),
            # A label: any name before `:` (keywords too: `block: MBConvLayers(...)`), or a string.
            (rf"({_NAME}|{_STRING})([ \t]*)(:)", bygroups(Name.Label, Whitespace, Punctuation)),
            include("expr"),
            (r"[{};]", Punctuation),
        ],
        "space": [
            (r"#[^\n]*", Comment.Single),
            (r"\\\r?\n", Whitespace),
            (r"[ \t\f\r\n]+", Whitespace),
        ],
        "expr": [
            (words(KEYWORDS, suffix=r"\b"), Keyword),
            (words(("and", "or", "not"), suffix=r"\b"), Operator.Word),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (_NAME, Name),
            (_FLOAT, Number.Float),
            (r"\d+", Number.Integer),
            (_STRING, String.Double),
            (_OPERATOR, Operator),
            (r"[()\[\],:.]", Punctuation),
        ],
        # The sizes of `input: 3 x 224 x 224`: the end of the statement (newline, `;`, `}`, a comment) pops.
        "input": [
            (r"[ \t\f]+|\\\r?\n", Whitespace),
            (r"x\b", Keyword),
            include("expr"),
            default("#pop"),
        ],
    }

    def get_tokens_unprocessed(
        self, text: str, stack: tuple[str, ...] = ("root",)
    ) -> Iterator[tuple[int, _TokenType, str]]:
        """The regex tokens, with each plain name classed as a block, a layer kind or a function."""
        blocks = set(_DEFINED.findall(text))
        kinds = all_kinds()
        for pos, token, value in super().get_tokens_unprocessed(text, stack):
            if token is Name:
                if value in blocks or "A" <= value[0] <= "Z":
                    token = Name.Class
                elif value in kinds:
                    token = Name.Builtin
                elif value in BUILTINS or value in SCHEMES:
                    token = Name.Function
            yield pos, token, value


#: The TextMate scope of each token class (whitespace has none); "invalid.illegal.cnnspec" marks what no rule reads.
TEXTMATE_SCOPES: dict[_TokenType, str] = {
    Comment.Single: "comment.line.number-sign.cnnspec",
    Keyword: "keyword.other.cnnspec",
    Keyword.Constant: "constant.language.boolean.cnnspec",
    Operator.Word: "keyword.operator.logical.cnnspec",
    Name.Builtin: "support.function.layer.cnnspec",
    Name.Function: "support.function.builtin.cnnspec",
    Name.Class: "entity.name.type.block.cnnspec",
    Name.Label: "entity.name.label.cnnspec",
    Name: "variable.other.cnnspec",
    Number.Integer: "constant.numeric.integer.cnnspec",
    Number.Float: "constant.numeric.float.cnnspec",
    String.Double: "string.quoted.double.cnnspec",
    Operator: "keyword.operator.cnnspec",
    Punctuation: "punctuation.cnnspec",
}


def _alternatives(names: list[str]) -> str:
    # Longest first, so that no name is cut short by a shorter one it starts with.
    return r"\b(?:" + "|".join(sorted(names, key=lambda n: (-len(n), n))) + r")\b"


def textmate_grammar() -> dict[str, object]:
    """The TextMate grammar (grammar/cnnspec.tmLanguage.json): the lexer's rules and classes as scopes.

    A TextMate grammar cannot look at the whole document, so a block is recognised where it is defined
    and by its capital letter (the lexer also knows lower-case blocks defined in the same text); the
    name lists are the same tables the lexer reads. Every regex is in the subset that Oniguruma and
    Python's `re` read alike.
    """
    s = TEXTMATE_SCOPES
    # The built-in kinds only: the file ships with cnnspec, whatever a process has registered since.
    names = [
        {"match": _alternatives([kind.name for kind in BUILTIN]), "name": s[Name.Builtin]},
        {"match": _alternatives([*BUILTINS, *SCHEMES]), "name": s[Name.Function]},
        {"match": r"\b[A-Z]\w*", "name": s[Name.Class]},
        {"match": _NAME, "name": s[Name]},
    ]
    expr = [
        {"match": _alternatives(list(KEYWORDS)), "name": s[Keyword]},
        {"match": r"\b(?:and|or|not)\b", "name": s[Operator.Word]},
        {"match": r"\b(?:true|false)\b", "name": s[Keyword.Constant]},
        {"include": "#names"},
        {"match": _FLOAT, "name": s[Number.Float]},
        {"match": r"\d+", "name": s[Number.Integer]},
        {"match": _STRING, "name": s[String.Double]},
        {"match": _OPERATOR, "name": s[Operator]},
        {"match": r"[()\[\],:.]", "name": s[Punctuation]},
    ]
    statement = [
        {"include": "#space"},
        {
            "begin": r"\b(input)[ \t]*(:)",
            "beginCaptures": {"1": {"name": s[Keyword]}, "2": {"name": s[Punctuation]}},
            "end": r"(?=[;}#])|$",
            "patterns": [{"match": r"\bx\b", "name": s[Keyword]}, {"include": "#expr"}],
        },
        {
            "match": rf"\b(init)[ \t]+({_NAME})(?:[ \t]+({_STRING}))?",
            "captures": {
                "1": {"name": s[Keyword]},
                "2": {"patterns": [{"include": "#names"}]},
                "3": {"name": s[String.Double]},
            },
        },
        {
            "match": rf"\b(network)[ \t]+({_NAME})[ \t]*(=)[ \t]*({_NAME})",
            "captures": {
                "1": {"name": s[Keyword]},
                "2": {"name": s[Name.Class]},
                "3": {"name": s[Operator]},
                "4": {"name": s[Name.Class]},
            },
        },
        {
            "match": rf"\b(block|network)[ \t]+({_NAME})",
            "captures": {"1": {"name": s[Keyword]}, "2": {"name": s[Name.Class]}},
        },
        {
            "match": rf"({_NAME}|{_STRING})[ \t]*(:)",
            "captures": {"1": {"name": s[Name.Label]}, "2": {"name": s[Punctuation]}},
        },
        {"include": "#expr"},
        {"match": r"[{};]", "name": s[Punctuation]},
        {"match": r"\S", "name": "invalid.illegal.cnnspec"},
    ]
    return {
        "$comment": "Generated by `python -m cnnspec.highlight > grammar/cnnspec.tmLanguage.json`; do not edit.",
        "name": "cnnspec",
        "scopeName": "source.cnnspec",
        "fileTypes": ["cnn"],
        "patterns": [{"include": "#statement"}],
        "repository": {
            "statement": {"patterns": statement},
            "space": {
                "patterns": [
                    {"match": r"#.*", "name": s[Comment.Single]},
                    # A line continuation, like whitespace, has no scope of its own.
                    {"match": r"\\$"},
                ]
            },
            "expr": {"patterns": expr},
            "names": {"patterns": names},
        },
    }


def main() -> None:
    """Print the TextMate grammar as JSON (python -m cnnspec.highlight > grammar/cnnspec.tmLanguage.json)."""
    import json

    print(json.dumps(textmate_grammar(), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
