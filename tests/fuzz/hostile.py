"""Hostile spec generators: deep, wide and long inputs, and specs that try to exhaust the work budget.

Each generator takes a size and gives spec text; SIZES lists the sizes each is run at, the last the
largest. tests/test_fuzz.py (slow) runs every case through `cnnspec check` in a fresh process and
asserts the issue-25 limits (exit 0 or 1, no traceback, file:line:col on every error, seconds and
MB bounded); benchmarks/bench_hostile.py prints the worst time and memory per generator.

The three families:
  deep: nesting of expressions, lists, groups, joins, residuals, `if`s and block calls;
  wide: many join branches, call arguments, list items, block parameters, distinct blocks;
  long: many lines, statements and comments, very long names, strings and numbers.
and budget: loops, comprehensions, string and list building, repetitions and layer counts that the
work budget (semantics/values.Budget, E608) must stop.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

_HEAD = "network N {\n    input: 3 x 8 x 8\n"
_TAIL = "    flatten\n    linear(10)\n}\n"


def _net(body: str) -> str:
    return _HEAD + body + _TAIL


# ------------------------------------------------------------------ deep


def deep_parens(n: int) -> str:
    """An argument in n pairs of parentheses."""
    return _net(f"    conv({'(' * n}4{')' * n}, 3, padding = 1)\n")


def deep_arithmetic(n: int) -> str:
    """An argument of n nested operations, 1 + (1 + (1 + ...))."""
    return _net(f"    conv({'1 + (' * n}4{')' * n}, 1)\n")


def deep_lists(n: int) -> str:
    """A list nested n deep, indexed back to its number."""
    return _net(f"    let x = {'[' * n}4{']' * n}\n    conv(x{'[0]' * n}, 1)\n")


def deep_groups(n: int) -> str:
    """Anonymous groups nested n deep."""
    return _net("    " + "{ " * n + "relu" + " }" * n + "\n")


def deep_joins(n: int) -> str:
    """Joins nested n deep, each with a second branch."""
    return _net("    " + "add { identity; " * n + "relu" + " }" * n + "\n")


def deep_residuals(n: int) -> str:
    """Residuals nested n deep."""
    return _net("    " + "residual { " * n + "relu" + " }" * n + "\n")


def deep_ifs(n: int) -> str:
    """`if`s nested n deep."""
    return _net("    " + "if true { " * n + "relu" + " }" * n + "\n")


def deep_blocks(n: int) -> str:
    """A chain of n blocks, each calling the next."""
    blocks = "".join(f"block B{i}(c) {{\n    B{i + 1}(c)\n    relu\n}}\n" for i in range(n))
    return blocks + f"block B{n}(c) {{\n    conv(c, 1)\n}}\n" + _net("    B0(4)\n")


# ------------------------------------------------------------------ wide


def wide_concat(n: int) -> str:
    """One concat of n branches."""
    return _net("    concat { " + "; ".join(f"conv({1 + i % 3}, 1)" for i in range(n)) + " }\n")


def wide_call_args(n: int) -> str:
    """A built-in called with n arguments, and a layer with n keyword arguments (all but one unknown)."""
    args = ", ".join(str(i % 7) for i in range(n))
    kwargs = ", ".join(f"k{i} = {i}" for i in range(n))
    return _net(f"    conv(max({args}) + 1, 1)\n    conv(4, 1, {kwargs})\n")


def wide_list(n: int) -> str:
    """A list literal of n items, summed."""
    return _net(f"    let xs = [{', '.join(str(i % 10) for i in range(n))}]\n    conv(sum(xs) % 8 + 1, 1)\n")


def wide_params(n: int) -> str:
    """A block of n parameters, called with n arguments."""
    params = ", ".join(f"p{i}" for i in range(n))
    args = ", ".join(str(i) for i in range(n))
    return f"block B({params}) {{\n    conv(p1 + 1, 1)\n}}\n" + _net(f"    B({args})\n")


def wide_blocks(n: int) -> str:
    """n distinct blocks of 20 branches each, each called 4 times."""
    blocks = "".join(
        f"block W{i}(c) {{\n    concat {{ " + "; ".join("conv(c, 1)" for _ in range(20)) + " }\n}\n" for i in range(n)
    )
    return blocks + _net("".join(f"    W{i}({i % 5 + 1}) * 4\n" for i in range(n)))


# ------------------------------------------------------------------ long


def long_lines(n: int) -> str:
    """n layer lines."""
    return _net("    relu\n" * n)


def long_comments(n: int) -> str:
    """n comment lines."""
    return "# a comment\n" * n + _net("    relu\n")


def long_lets(n: int) -> str:
    """n `let`s, each using the one before."""
    lets = "    let v0 = 1\n" + "".join(f"    let v{i} = v{i - 1} % 7 + 1\n" for i in range(1, n))
    return _net(lets + f"    conv(v{n - 1}, 1)\n")


def long_name(n: int) -> str:
    """An unknown layer whose name has n characters."""
    return _net(f"    {'x' * n}\n")


def long_string(n: int) -> str:
    """A string argument of n characters."""
    return _net(f'    conv(4, 3, padding = "{"s" * n}")\n')


def long_number(n: int) -> str:
    """A number of n digits."""
    return _net(f"    conv({'9' * n}, 1)\n")


def long_bad_line(n: int) -> str:
    """A line of n characters with one bad character at its end."""
    return _net("    relu" + " " * n + "@\n")


# ------------------------------------------------------------------ budget


def nested_loops(n: int) -> str:
    """Loops nested three deep, n turns each, building a list every turn."""
    loops = f"for i in range({n}) {{ for j in range({n}) {{ for k in range({n}) {{ let _x = [i, j, k] }} }} }}"
    return _net(f"    {loops}\n")


def comprehension(n: int) -> str:
    """A comprehension of n by n items, then one of the whole again n times."""
    return _net(
        f"    let a = [[i * j + 1 for j in range({n})] for i in range({n})]\n    let _b = [a for i in range({n})]\n"
    )


def string_doubling(n: int) -> str:
    """A string doubled n times."""
    lets = '    let s0 = "ab"\n' + "".join(f"    let s{i} = s{i - 1} + s{i - 1}\n" for i in range(1, n))
    return _net(lets + f"    let _t = s{n - 1}\n")


def list_copies(n: int) -> str:
    """A list of 10,000 items copied in a loop of n turns."""
    return _net(f"    let a = range(10000)\n    for i in range({n}) {{ let _b = a + a }}\n")


def repeat_count(n: int) -> str:
    """A block of four layers repeated n times."""
    return "block B(c) {\n    conv(c, 3, padding = 1)\n    batchnorm\n    relu\n    dropout(0.1)\n}\n" + _net(
        f"    B(4) * {n}\n"
    )


def many_blocks(n: int) -> str:
    """n calls of one residual block, each with its own arguments (none alike)."""
    block = (
        "block U(c, p) {\n    residual { conv(c, 3, padding = 1); batchnorm; relu; dropout(p); conv(c, 3, padding = 1);"
        " batchnorm } shortcut proj { conv(c, 1); batchnorm }\n    relu\n}\n"
    )
    return block + _net("".join(f"    U({4 + 4 * (i % 2)}, {i / (n + 1):.6f})\n" for i in range(n)))


def huge_widths(n: int) -> str:
    """Layers n channels wide and an input of n pixels: parameter and MAC counts past any limit."""
    layers = f"    conv({n}, 3)\n    conv({n}, 3)\n    flatten\n    linear({n})\n"
    return f"network N {{\n    input: 3 x {n} x {n}\n{layers}}}\n"


@dataclass(frozen=True)
class Generator:
    """A generator of hostile specs: its family (deep, wide, long, budget), function and sizes, largest last."""

    family: str
    make: Callable[[int], str]
    sizes: tuple[int, ...]

    @property
    def name(self) -> str:
        """The function's name."""
        return self.make.__name__


GENERATORS: tuple[Generator, ...] = (
    Generator("deep", deep_parens, (10, 150, 10_000)),
    Generator("deep", deep_arithmetic, (10, 150, 10_000)),
    Generator("deep", deep_lists, (10, 150, 10_000)),
    Generator("deep", deep_groups, (10, 70, 10_000)),
    Generator("deep", deep_joins, (10, 70, 10_000)),
    Generator("deep", deep_residuals, (10, 70, 10_000)),
    Generator("deep", deep_ifs, (10, 70, 10_000)),
    Generator("deep", deep_blocks, (10, 60, 1_000)),
    Generator("wide", wide_concat, (10, 1_000, 50_000)),
    Generator("wide", wide_call_args, (10, 1_000, 50_000)),
    Generator("wide", wide_list, (10, 10_000, 500_000)),
    Generator("wide", wide_params, (10, 1_000, 50_000)),
    Generator("wide", wide_blocks, (10, 30, 2_000)),
    Generator("long", long_lines, (10, 10_000, 1_000_000)),
    Generator("long", long_comments, (10, 10_000, 1_000_000)),
    Generator("long", long_lets, (10, 1_000, 100_000)),
    Generator("long", long_name, (10, 10_000, 1_000_000)),
    Generator("long", long_string, (10, 10_000, 8_000_000)),
    Generator("long", long_number, (10, 1_000, 1_000_000)),
    Generator("long", long_bad_line, (10, 10_000, 5_000_000)),
    Generator("budget", nested_loops, (3, 30, 1_000)),
    Generator("budget", comprehension, (3, 100, 1_000)),
    Generator("budget", string_doubling, (3, 15, 40)),
    Generator("budget", list_copies, (3, 100, 1_000_000)),
    Generator("budget", repeat_count, (3, 1_000, 1_000_000)),
    Generator("budget", many_blocks, (3, 300, 100_000)),
    Generator("budget", huge_widths, (8, 10_000, 10**15)),
)

#: The bounds of issue 25 on one spec: a fresh `cnnspec check` process's wall seconds and peak memory.
MAX_SECONDS = 5.0
MAX_MB = 500

#: Runs `python -m cnnspec ARGS` in this process, then reports its own peak memory (KB) on the last
#: line of stderr: VmHWM, which exec resets, where ru_maxrss keeps the peak of the process that forked
#: the child (a pytest worker that imported torch has 500 MB of its own).
_WRAPPER = """
import resource, runpy, sys
sys.argv = ["cnnspec", *sys.argv[1:]]
try:
    runpy.run_module("cnnspec", run_name="__main__")
finally:
    sys.stdout.flush()
    try:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"@@maxrss {peak}", file=sys.stderr)
"""


@dataclass(frozen=True)
class Run:
    """What one `cnnspec check` of a generated spec did."""

    returncode: int
    seconds: float
    #: Peak resident memory of the child, MB.
    peak_mb: float
    stdout: str
    stderr: str


def run_check(path: Path, *args: str, timeout: float = 15.0, cwd: Path | None = None) -> Run:
    """`python -m cnnspec check PATH ARGS` in a fresh process: its exit status, wall time and peak memory.

    The child reports its own peak (_WRAPPER), so every input's peak is its own; a child that runs
    past timeout raises subprocess.TimeoutExpired.
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _WRAPPER, "check", str(path), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    seconds = time.perf_counter() - start
    err_lines = done.stderr.rstrip("\n").split("\n")
    peak_kb = 0
    if err_lines and err_lines[-1].startswith("@@maxrss "):
        peak_kb = int(err_lines.pop().split()[1])
    else:  # killed before it could say: the whole family's peak is an upper bound
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return Run(done.returncode, seconds, peak_kb / 1024, done.stdout, "\n".join(err_lines))


def cases() -> list[tuple[Generator, int]]:
    """Every (generator, size) pair."""
    return [(g, n) for g in GENERATORS for n in g.sizes]
