"""Input-size limits (issue 25): how large a spec may be, how long its literals, how many
diagnostics are shown, and how hostile text (control characters, megabyte names) is shown.

The golden fixtures E607_*, E610_*, E001_control_characters_shown, E001_long_line_quoted_around_the_caret
and E002_checking_stops_after_ten_syntax_errors show the diagnostics themselves; here are the
helpers they rest on, and one slow test that runs generated oversized inputs through the real
command line and holds them to a time and memory budget.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import ROOT

from cnnspec.diagnostics import Diagnostic, Diagnostics, SpecError
from cnnspec.diagnostics.core import MAX_KEPT, MAX_SHOWN, MAX_WORD, bounded, render, render_all
from cnnspec.syntax import limits, parser
from cnnspec.syntax.source import SourceMap, Span, elide, visible
from cnnspec.views.summary import MAX_SHOWN_PATH, shown_name


def test_a_long_name_is_shown_by_its_start_and_its_length() -> None:
    assert elide("conv1") == "conv1"
    assert elide("a" * 60) == "a" * 60
    shown = elide("a" * 1_000_000)
    assert shown.startswith("a" * 30) and shown.endswith("…(1,000,000 characters)")
    assert len(shown) < 80


def test_control_characters_are_drawn_one_column_each() -> None:
    assert visible("plain text") == "plain text"
    assert visible("re\x00lu\x1b[2J\x7f") == "re␀lu␛[2J␡"
    # A bidi override or a C1 control could reorder or restyle the terminal: a replacement character.
    assert visible("a\u202eb\x85c") == "a\ufffdb\ufffdc"
    for text in ("\x00\x01\x1f", "a\u202e\u200bb"):
        assert len(visible(text)) == len(text)


def test_the_caret_stays_under_the_character_after_a_nul() -> None:
    sources = SourceMap()
    sources.add("x.cnn", "network N {\n  re\x00lu\x1b $\n}\n")
    d = Diagnostic("E001", "unexpected character `$`", Span("x.cnn", 2, 10, 2, 11))
    quoted, caret = render(d, sources).splitlines()[2:4]
    assert "\x00" not in quoted and "\x1b" not in quoted
    assert quoted.index("$") == caret.index("^")


def test_a_line_ends_only_at_a_newline_as_the_parser_counts_it() -> None:
    # str.splitlines would also split at the form feed and U+2028 and quote the wrong line.
    sources = SourceMap()
    sources.add("x.cnn", "a\x0cb\u2028c\r\nsecond\nthird")
    assert sources.line("x.cnn", 1) == "a\x0cb\u2028c"
    assert sources.line("x.cnn", 2) == "second"
    assert sources.line("x.cnn", 3) == "third"
    assert sources.line("x.cnn", 4) == ""
    assert sources.line("x.cnn", 5) is None


def test_messages_shorten_long_words_and_stay_bounded() -> None:
    name = "n" * 5000
    msg = bounded(f"unknown layer or block `{name}`")
    assert msg.startswith("unknown layer or block `nnn") and "…(5,002 characters)" in msg
    assert len(msg) < MAX_WORD
    assert bounded("x " * 5000).endswith("…") and len(bounded("x " * 5000)) <= 2000
    d = Diagnostic("E101", f"unknown layer or block `{name}`", None, help=[name])
    assert len(json.dumps(d.to_dict())) < 1000
    assert len(render(d, SourceMap())) < 1000


def test_past_max_shown_the_rest_are_counted_and_the_count_is_truthful() -> None:
    errors = [Diagnostic("E102", f"unknown name `v{i}`", None) for i in range(MAX_SHOWN + 7)]
    warnings = [Diagnostic("W004", f"`let w{i}` is never used", None, "warning") for i in range(3)]
    text = render_all(errors + warnings, SourceMap())
    assert text.count("error[E102]") == MAX_SHOWN and "warning[W004]" not in text
    assert f"... and {7 + 3} more" in text
    assert text.endswith(f"aborting: {MAX_SHOWN + 7} errors and 3 warnings")


def test_diagnostics_past_max_kept_are_counted_as_errors_or_warnings() -> None:
    diags = Diagnostics(SourceMap())
    for i in range(MAX_KEPT):
        diags.error("E102", f"unknown name `v{i}`", None)
    for i in range(40):
        diags.warning("W004", f"`let w{i}` is never used", None)
    for i in range(2):
        diags.error("E102", f"unknown name `late{i}`", None)
    with pytest.raises(SpecError) as info:
        diags.raise_if_errors()
    assert len(info.value.diagnostics) == MAX_KEPT
    assert str(info.value).endswith(f"aborting: {MAX_KEPT + 2} errors and 40 warnings")


def test_summary_names_are_elided_and_drawn_visibly() -> None:
    assert shown_name("stage1.block2.conv1") == "stage1.block2.conv1"
    assert shown_name("lab\x1bel") == "lab␛el"
    long = shown_name("x" * 4096)
    assert len(long) <= MAX_SHOWN_PATH and long.endswith("…(4,096 characters)")


def test_literal_errors_past_the_cap_are_counted() -> None:
    text = "network N {\n  input: 3\n" + "".join(f'  "{"s" * 20}{i}": relu\n' for i in range(30)) + "}\n"
    old = parser.MAX_STRING
    try:
        parser.MAX_STRING = 10
        with pytest.raises(SpecError) as info:
            parser.parse(text, "x.cnn", SourceMap())
    finally:
        parser.MAX_STRING = old
    assert len(info.value.diagnostics) == limits.MAX_SYNTAX_ERRORS
    assert info.value.omitted == 30 - limits.MAX_SYNTAX_ERRORS
    assert str(info.value).endswith("aborting: 30 errors")


def test_errors_later_on_a_long_line_are_not_each_made_into_a_diagnostic() -> None:
    # Every token after the first `relu` is an error; only the first is reported, and the parser
    # gives up after MAX_ERROR_EVENTS of them instead of describing each.
    text = "network N {\n  input: 3\n  relu" + " relu" * 5000 + "\n}\n"
    with pytest.raises(SpecError) as info:
        parser.parse(text, "x.cnn", SourceMap())
    (d,) = info.value.diagnostics
    assert d.span == Span("x.cnn", 3, 8, 3, 12)
    assert "checking stopped at line 3 after 1 syntax error;" in d.notes[-1].message


# ------------------------------------------------------------------------------ budget

MiB = 1 << 20
_HEAD = "network N {\n  input: 3 x 32 x 32\n"

#: Each class of oversized input the issue found, at the size it was found, and the worst of
#: each class within the limits. name: (text, what the first diagnostic must be).
OVERSIZED = {
    "million_layer_lines": (_HEAD + "  relu\n" * 1_000_000 + "}\n", "E607"),
    "million_comment_lines": ("# a comment\n" * 1_000_000 + _HEAD + "  relu\n}\n", "E607"),
    "five_mib_line_bad_char_at_its_end": (_HEAD + "  relu" + " relu" * MiB + " $\n}\n", "E607"),
    "hundred_thousand_errors": (_HEAD + "  relu $\n" * 100_000 + "}\n", "E607"),
    "one_mib_identifier": (_HEAD + "  " + "a" * (MiB - 100) + "\n}\n", "E610"),
    "eight_mib_string": (_HEAD + '  conv(8, 3, padding = "' + "x" * (8 * MiB) + '")\n}\n', "E607"),
    "one_mib_string": (_HEAD + '  conv(8, 3, padding = "' + "x" * (MiB - 100) + '")\n}\n', "E610"),
    "million_item_list": (_HEAD + "  let xs = [" + "1, " * 1_000_000 + "1]\n  relu\n}\n", "E607"),
    "list_over_the_limit": (_HEAD + "  let xs = [" + "1," * 12_000 + "1]\n  relu\n}\n", "E610"),
    "tokens_over_the_limit_on_one_line": (_HEAD + "relu;" * ((MiB - 100) // 5) + "\n}\n", "E607"),
    "junk_filling_a_line": (_HEAD + "  relu " + "$" * (MiB - 100) + "\n}\n", "E001"),
    "one_mib_of_spaces_then_a_bad_char": (_HEAD + "  relu" + " " * (MiB - 100) + "$\n}\n", "E001"),
    "overlong_names_on_many_lines": (_HEAD + ("  " + "a" * 300 + "\n") * 3000 + "}\n", "E610"),
    "nul_and_escape_in_a_line": (_HEAD + "  re\x00lu\x1b[2J $\n}\n", "E001"),
}

#: Runs one check in a child process and reports its peak memory (RUSAGE_CHILDREN of this
#: intermediary holds only that check, not whatever the test process ran before).
_MEASURE = textwrap.dedent(
    """
    import resource, subprocess, sys
    p = subprocess.run([sys.executable, "-m", "cnnspec", *sys.argv[1:]], capture_output=True, text=True)
    sys.stderr.write(p.stdout + p.stderr)
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, p.returncode, file=sys.stderr)
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("name", OVERSIZED)
def test_oversized_input_is_refused_with_a_diagnostic_within_the_budget(name: str, tmp_path: Path) -> None:
    text, code = OVERSIZED[name]
    spec = tmp_path / f"{name}.cnn"
    spec.write_text(text, encoding="utf-8")
    for fmt in ("text", "json"):
        # Bounds far above what a loaded two-core machine needs (about 2 s and 60 MB measured):
        # they catch a return of the quadratic or unbounded behaviour, not noise.
        p = subprocess.run(
            [sys.executable, "-c", _MEASURE, "check", str(spec), "--diagnostics", fmt],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=30,
        )
        out, _, tail = p.stderr.rstrip().rpartition("\n")
        rss_kib, rc = (int(x) for x in tail.split())
        assert rc == 1, out[-2000:]
        assert "Traceback" not in out
        assert rss_kib < 500 * 1024, f"{rss_kib // 1024} MB"
        assert len(out) < 20_000  # a megabyte name or string is never echoed whole
        assert "\x00" not in out and "\x1b" not in out
        if fmt == "text":
            first = out.splitlines()[0]
            assert re.match(rf"{re.escape(str(spec))}:\d+:\d+: error\[{code}\]", first), first
        else:
            first = json.loads(out)[0]
            assert (first["code"], first["file"]) == (code, str(spec)) and first["line"] >= 1, first
