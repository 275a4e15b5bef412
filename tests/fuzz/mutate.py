"""Spec generators for fuzzing the checker: mutations of the stock specs and random specs.

Shared by tests/test_fuzz.py (hypothesis, a few hundred cases in CI) and
tests/fuzz/fuzz_checker.py (10,000+ cases from the command line).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import cnnspec
from cnnspec.api import analyse
from cnnspec.diagnostics.codes import CODES
from cnnspec.semantics.elaborate import Limits

SPECS = Path(__file__).resolve().parents[2] / "specs"

#: Tokens a mutation may insert: every keyword, bracket and operator, and hostile values.
TOKENS = [
    "{", "}", "(", ")", "[", "]", ",", ":", ";", "=", "==", "*", "**", "+", "-", "/", "//", "%", ".", "\n",
    "block", "network", "import", "residual", "shortcut", "if", "else", "for", "in", "aux", "let", "init",
    "input", "not", "and", "or", "true", "false", "x", "conv", "linear", "flatten", "relu", "concat", "add",
    "mul", "maxpool", "batchnorm", "dropout", "identity", "in.channels", "range(3)", "0", "-1", "1e999",
    "99999999999999999999999", "2 ** 64", '"same"', '"\\q"', "'", "@", "\x00", "\u2028", "ﬁ", "forward",
    "__init__", "self", "torch", "0.5", "[1, 2]", "[[1]]", "#", "permute", "reshape", "transpose", "select",
    "slice", "pad", "roll", "mean", "chunk", "split", "channel_shuffle", "upsample", "conv_transpose", "[0, 2, 3, 1]",
]


def stock_texts() -> list[tuple[str, str]]:
    """(name, text) of every stock spec."""
    return [(p.name, p.read_text(encoding="utf-8")) for p in sorted(SPECS.glob("*.cnn"))]


def mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of a spec: delete, insert, duplicate, swap, replace a number, truncate."""
    for _ in range(rng.randint(1, 3)):
        if not text:
            text = rng.choice(TOKENS)
        op = rng.randrange(7)
        i = rng.randrange(len(text) + 1)
        if op == 0:  # delete a span
            text = text[:i] + text[i + rng.randint(1, 20) :]
        elif op == 1:  # insert a token
            text = text[:i] + rng.choice(TOKENS) + text[i:]
        elif op == 2:  # duplicate a line
            lines = text.split("\n")
            k = rng.randrange(len(lines))
            lines.insert(k, lines[k])
            text = "\n".join(lines)
        elif op == 3:  # swap two lines
            lines = text.split("\n")
            a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif op == 4:  # replace a number with a hostile one
            digits = [j for j, c in enumerate(text) if c.isdigit()]
            if digits:
                j = rng.choice(digits)
                text = text[:j] + rng.choice(["0", "-3", "100000", "1e400", "7", "2 ** 62"]) + text[j + 1 :]
        elif op == 5:  # truncate
            text = text[:i]
        else:  # replace one character
            if i < len(text):
                text = text[:i] + rng.choice("{}()[],:;=*.+-x\n\" #") + text[i + 1 :]
    return text


_LAYERS = ["conv(8, 3)", "conv(4, 1, stride = 2)", "relu", "batchnorm", "maxpool(2)", "flatten", "linear(10)",
           "dropout(0.5)", "identity", "adaptive_avgpool(1)", "conv(16, 7, padding = 3)", "groupnorm(2)",
           # The tensor ops, with dims that fit some inputs and not others (rank, range, the batch).
           "permute([0, 2, 3, 1])", "permute([0, 3, 1, 2])", "permute([0, 1, 1])", "reshape([8, 16])",
           "reshape([-1, 4])", "transpose(1, 2)", "transpose(0, 3)", "flatten(2)", "flatten(3, 1)",
           "select(1, 0)", "select(-1, 99)", "slice(2, 0, step = 2)", "slice(3, 5, 2)", "pad([0, 1, 0, 1])",
           "pad([0, -99])", "roll([3, 3], [2, 3])", "roll([1], [0, 1])", "mean([2, 3])", "mean([-1], keepdim = true)",
           "chunk(2, 0)", "chunk([1, 2], 1)", "chunk(3, 5, dim = 2)", "channel_shuffle(2)", "upsample()",
           'upsample(size = [7, 7], mode = "bilinear", align_corners = true)', "upsample(0.01)",
           "conv_transpose(4, 2, stride = 2)", "conv_transpose(4, 3, output_padding = 2)",
           'layernorm(over = "last")', 'layernorm(over = "channels")', "linear(10)",
           "attention(2)", "window_attention(2, 4, shift = 2)"]


def random_spec(rng: random.Random, depth: int = 0) -> str:
    """A small spec from the language's constructs, valid or not, nested a little."""
    def stmt(d: int) -> str:
        r = rng.random()
        if d < 3 and r < 0.12:
            return "residual { " + "; ".join(stmt(d + 1) for _ in range(rng.randint(0, 2))) + " }" + (
                " shortcut p { conv(8, 1) }" if rng.random() < 0.5 else "")
        if d < 3 and r < 0.24:
            j = rng.choice(
                ["concat", "add", "mul", "concat(dim = -1)", "concat(dim = 0)", "add(1)", "split(2)", "split(3, -1)"]
            )
            return j + " { " + "; ".join(stmt(d + 1) for _ in range(rng.randint(1, 3))) + " }"
        if d < 3 and r < 0.30:
            return f"for i in range({rng.randint(0, 3)}) {{ {stmt(d + 1)} }}"
        if d < 3 and r < 0.36:
            return f"if {rng.choice(['true', 'false', '1 < 2', 'x'])} {{ {stmt(d + 1)} }} else {{ {stmt(d + 1)} }}"
        if r < 0.42:
            return f"B({rng.randint(-1, 9)})"
        if r < 0.46:
            return f"let v{rng.randint(0, 3)} = {rng.choice(['1', '[1, 2]', 'in.channels', 'v0 + 1'])}"
        if r < 0.50:
            return f"aux(weight = {rng.choice(['0', '0.3', '-1'])}) {{ flatten; linear(2) }}"
        label = rng.choice(
            ["", "", "a: ", "b: ", "forward: ", '"x{1}": ', '"blk{i}-{1}": ', '"v{i + 1}_{v0}": ', '"y{i +}": ',
             '"block1-0": ', '"c{[1]}": ']
        )
        return label + rng.choice(_LAYERS) + rng.choice(["", "", " * 2", " * 0"])

    body = "\n    ".join(stmt(0) for _ in range(rng.randint(1, 6)))
    c, h = rng.choice([1, 3, 8]), rng.choice([1, 5, 16, 32])
    block = f"block B(c) {{ conv(c, 3, padding = 1); {stmt(1)} }}\n" if rng.random() < 0.7 else ""
    return f"{block}network N {{\n    input: {c} x {h} x {h}\n    {body}\n}}\n"


def check_one(text: str, limits: Limits | None = None) -> str:
    """Check a spec; 'ok' or 'error', or raise AssertionError/anything when the checker misbehaves."""
    try:
        analyse(text, limits=limits)
        return "ok"
    except cnnspec.SpecError as e:
        assert e.diagnostics, "SpecError without diagnostics"
        lines = text.split("\n")
        for d in e.diagnostics:
            assert d.code in CODES, d.code
            assert d.message
            for span in [d.span] + [n.span for n in d.notes]:
                if span is None or span.file != "<spec>":
                    continue
                assert 1 <= span.line <= len(lines), (d, len(lines))
                assert 1 <= span.col <= len(lines[span.line - 1]) + 2, (d, lines[span.line - 1])
                assert (span.end_line, span.end_col) >= (span.line, span.col), d
        e.render(color=True)
        json.dumps([d.to_dict() for d in e.diagnostics])
        return "error"
