"""Reading spec files and their imports into one Program.

An import is looked for beside the importing file, then in each directory of
the search path (the caller's, e.g. `--path DIR`, then CNNSPEC_PATH's), then
among the stock specs shipped with the package; the first file found is read.
An import cycle, an unreadable or missing file (the error lists every place
looked) and a name defined twice are errors. Each file is parsed once, however
many files import it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cnnspec.diagnostics import Diagnostics, Note, SpecError
from cnnspec.diagnostics.codes import E401, E402, E403, E412, E607
from cnnspec.syntax import ast
from cnnspec.syntax.limits import MAX_SOURCE
from cnnspec.syntax.parser import parse
from cnnspec.syntax.source import SourceMap, Span, display_name

#: How many files one program may pull in through imports.
MAX_FILES = 1000
#: The environment variable of import directories, separated by os.pathsep (as PYTHONPATH).
PATH_VARIABLE = "CNNSPEC_PATH"

#: A place an import is looked for: a directory, and why it is searched (shown when nothing is found).
SearchDir = tuple[str, str]


def stock_specs() -> Path | None:
    """The directory of the stock specs (specs/ of the source tree, cnnspec/specs/ in a wheel)."""
    package = Path(__file__).resolve().parent.parent
    installed = package / "specs"
    if installed.is_dir():
        return installed
    # A checkout (editable install or PYTHONPATH): specs/ beside the package. Only there: in an
    # installed tree, a `specs` folder beside the package would be another distribution's.
    checkout = package.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "specs").is_dir():
        return checkout / "specs"
    return None


def search_path(path: Sequence[str | os.PathLike[str]] | None = None) -> list[SearchDir]:
    """Where imports are looked for after the importing file's directory, in order: each directory
    of path (the `--path` options), then of CNNSPEC_PATH, then the stock specs."""
    if isinstance(path, str | os.PathLike):
        path = [path]  # one directory given alone, not its characters
    dirs: list[SearchDir] = [(os.path.realpath(os.fspath(d)), "--path") for d in path or ()]
    env = os.environ.get(PATH_VARIABLE, "")
    dirs += [(os.path.realpath(d), PATH_VARIABLE) for d in env.split(os.pathsep) if d]
    stock = stock_specs()
    if stock is not None:
        dirs.append((str(stock), "the stock specs"))
    return dirs


class ParsedFiles(Protocol):
    """Where the loader keeps imported files' modules by (display name, text) for later checks:
    a language server's dict, or cnnspec.syntax.cache.ParsedOnDisk."""

    def get(self, key: tuple[str, str], /) -> ast.Module | None:
        """The module of the file named key[0] with the text key[1], if kept."""
        ...

    def __setitem__(self, key: tuple[str, str], module: ast.Module, /) -> None:
        """Keep module for key."""
        ...


@dataclass
class Program:
    """Every block and network visible from the main file."""

    main_file: str
    sources: SourceMap
    blocks: dict[str, ast.BlockDef] = field(default_factory=dict)
    networks: dict[str, ast.NetworkDef | ast.NetworkAlias] = field(default_factory=dict)
    #: Networks defined in the main file itself, in order.
    main_networks: list[str] = field(default_factory=list)
    #: Blocks defined in the main file itself (for unused-block warnings).
    main_blocks: list[str] = field(default_factory=list)
    #: Every file's parsed module by display name (the language server reads imports and spans from them).
    modules: dict[str, ast.Module] = field(default_factory=dict)
    #: The resolved path of the file each import statement (by its span) names.
    imports: dict[Span, str] = field(default_factory=dict)


def is_path(spec: str | Path) -> bool:
    """Whether a spec argument names a file rather than holding spec text."""
    if isinstance(spec, Path):
        return True
    # Spec text always has one of these (a network has a body, an import a string,
    # an alias a call); a path has none, so `/dev/zero` or `typo.cnm` is read as a
    # path and reported as one.
    return not any(c in spec for c in '\n{("=;\x00')


def load(
    spec: str | Path,
    sources: SourceMap | None = None,
    path: Sequence[str | os.PathLike[str]] | None = None,
    *,
    file: str | None = None,
    overlay: Mapping[str, str] | None = None,
    parsed: ParsedFiles | None = None,
) -> Program:
    """Parse a spec (a path or the text itself) and everything it imports; path: directories to
    look for imports in after the importing file's own (see search_path).

    file: spec is the text of this file (an editor's unsaved buffer): spans name it and its
    imports are looked for beside it. overlay: texts that stand for files, by resolved path
    (the other buffers open in an editor; such a file need not exist on disk yet). parsed: the
    caller's store of imported files' modules by (display name, text), read and filled here (a
    language server re-checks one buffer whose imports rarely change; a check from the command
    line or the API keeps them on disk, see cnnspec.syntax.cache).
    """
    sources = sources or SourceMap()
    diags = Diagnostics(sources)
    search = search_path(path)
    if file is not None:
        base = os.path.realpath(file)
        name, text = display_name(file, base), str(spec)
    elif is_path(spec):
        # Plain strings: pathlib's objects cost more than everything else loading does, parsing aside.
        file = os.fspath(spec)
        base = os.path.realpath(file)
        name = display_name(file, base)
        try:
            text = read_spec(file)
        except _TooLarge as e:
            # Pointing at the file's start: nothing of it was read, so no line is quoted.
            diags.error(
                E607,
                f"{name} is {e.size:,} bytes, more than the limit of {MAX_SOURCE:,} bytes",
                Span(name, 1, 1, 1, 1),
                help=["no written spec is this large; repeat layers with `* N`, `for` loops and blocks"],
            )
            raise SpecError(diags.items, sources) from None
        except (OSError, UnicodeDecodeError) as e:
            diags.error(E401, f"cannot read {name}: {_reason(e)}", None, help=["check the path"])
            raise SpecError(diags.items, sources) from None
    else:
        name, text, base = "<spec>", str(spec), os.path.join(os.getcwd(), "<spec>")
    program = Program(main_file=name, sources=sources)
    loader = _Loader(program, diags, search, overlay or {}, parsed)
    loader.file(base, name, text, chain=(), main=True)
    diags.raise_if_errors()
    return program


class _TooLarge(Exception):
    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


class _NotAFile(OSError):
    pass


#: Flags for opening a spec: never blocking (a FIFO would wait for a writer before the check below
#: could refuse it), bytes as they are (Windows), not inherited by children.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def read_spec(path: str | os.PathLike[str]) -> str:
    """The text of a spec file; refuses what is not a regular file or is larger than MAX_SOURCE.

    Checked on the open file before reading, so that `/dev/zero`, a FIFO or a huge
    file cannot block or exhaust the memory. One open, one fstat and the reads: a
    check reads every file of a spec each time, and each system call counts there.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError(os.fspath(path))
            raise _NotAFile(os.fspath(path))
        if st.st_size > MAX_SOURCE:
            raise _TooLarge(st.st_size)
        # Ask for one byte more than fstat gave: getting just the size is the end of the file.
        # A file longer than it said (/proc says 0) is read on in 64 KiB pieces, bounded
        # (os.read makes a buffer of the size asked for).
        chunks, size, want = [], 0, st.st_size + 1
        while size <= MAX_SOURCE:
            chunk = os.read(fd, min(want, MAX_SOURCE + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size == st.st_size > 0:
                break
            want = 1 << 16
    finally:
        os.close(fd)
    if size > MAX_SOURCE:
        raise _TooLarge(size)
    return b"".join(chunks).decode("utf-8")


def _reason(e: Exception) -> str:
    if isinstance(e, _NotAFile):
        return "it is not a regular file"
    if isinstance(e, FileNotFoundError):
        return "no such file"
    if isinstance(e, IsADirectoryError):
        return "it is a directory"
    if isinstance(e, PermissionError):
        return "permission denied"
    if isinstance(e, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return str(e)


def find_import(
    importer: str, name: str, search: list[SearchDir], overlay: Mapping[str, str] | None = None
) -> tuple[str | None, list[SearchDir]]:
    """The file an import names (its resolved path; None when none exists), and every place
    looked, in order: the importing file's directory, then the search path. A path in overlay
    (an editor's buffer) counts as existing."""
    tried: list[SearchDir] = []
    if os.path.isabs(name):
        places = [(os.path.dirname(name), "the path given")]
    else:
        places = [(os.path.dirname(importer), "beside the importing file"), *search]
    seen = set()
    for folder, why in places:
        target = os.path.realpath(os.path.join(folder, name))
        if target in seen:
            continue
        seen.add(target)
        tried.append((target, why))
        if (overlay is not None and target in overlay) or os.path.exists(target):
            return target, tried
    return None, tried


class _Loader:
    def __init__(
        self,
        program: Program,
        diags: Diagnostics,
        search: list[SearchDir],
        overlay: Mapping[str, str],
        parsed: ParsedFiles | None = None,
    ) -> None:
        self.program = program
        self.diags = diags
        self.search = search
        self.overlay = overlay
        self.parsed = parsed
        self.done: set[str] = set()  # resolved paths

    def find(self, importer: str, name: str) -> tuple[str | None, list[SearchDir]]:
        """The file an import names and every place looked (see find_import)."""
        return find_import(importer, name, self.search, self.overlay)

    def file(self, path: str, name: str, text: str, chain: tuple[tuple[str, Span], ...], main: bool) -> None:
        self.done.add(path)
        # The main file is not cached: it is the one being edited. A module is never changed once built.
        cached = None if main or self.parsed is None else self.parsed.get((name, text))
        if cached is not None:
            self.program.sources.add(name, text)
            module = cached
        else:
            try:
                module = parse(text, name, self.program.sources)
            except SpecError as e:
                self.diags.extend(e.diagnostics, e.omitted, e.omitted_warnings)
                return
            if not main and self.parsed is not None:
                self.parsed[(name, text)] = module
        self.program.modules[name] = module
        for item in module.items:
            if isinstance(item, ast.Import):
                self.import_(path, item, chain)
            else:
                self.define(item, path, main)

    def import_(self, importer: str, item: ast.Import, chain: tuple[tuple[str, Span], ...]) -> None:
        if "\0" in item.path:  # the OS refuses such a path outright (os.path raises ValueError)
            shown = item.path.replace("\0", "\\0")
            self.diags.error(
                E401,
                f'cannot import "{shown}": a file name cannot hold a NUL character',
                item.span,
                help=["check the import's string for a stray control character"],
            )
            return
        target, tried = self.find(importer, item.path)
        if target is None:
            self.diags.error(
                E401,
                f'cannot import "{item.path}": no such file',
                item.span,
                notes=[Note(f"looked for {display_name(place, place)} ({why})") for place, why in tried],
                help=[
                    "imports are looked for beside the importing file, then in the --path directories and those of "
                    f"{PATH_VARIABLE}, then among the stock specs"
                ],
            )
            return
        self.program.imports[item.span] = target
        if target == importer or any(p == target for p, _ in chain):
            cycle = [p for p, _ in chain] + [importer, target]
            start = cycle.index(target)
            names = " -> ".join(display_name(p) for p in cycle[start:])
            self.diags.error(
                E402,
                f"import cycle: {names}",
                item.span,
                help=["move the shared blocks into a file that both can import"],
            )
            return
        if target in self.done:
            return
        if len(self.done) >= MAX_FILES:
            self.diags.error(E607, f"more than {MAX_FILES} files are imported", item.span)
            return
        try:
            text = self.overlay[target] if target in self.overlay else read_spec(target)
        except _TooLarge as e:
            self.diags.error(
                E607, f'cannot import "{item.path}": it is {e.size:,} bytes, more than {MAX_SOURCE:,}', item.span
            )
            return
        except (OSError, UnicodeDecodeError) as e:
            self.diags.error(
                E401,
                f'cannot import "{item.path}": {_reason(e)}',
                item.span,
                help=[f"found as {display_name(target, target)}, but it cannot be read"],
            )
            return
        self.file(target, display_name(target, target), text, chain + ((importer, item.span),), main=False)

    def define(self, item: ast.BlockDef | ast.NetworkDef | ast.NetworkAlias, path: str, main: bool) -> None:
        prog = self.program
        if not isinstance(item, ast.NetworkAlias):
            self.params_once(item)
        other = prog.blocks.get(item.name) or prog.networks.get(item.name)
        if other is not None:
            self.diags.error(
                E403,
                f"`{item.name}` is defined twice",
                item.name_span,
                notes=[Note("first defined here", other.name_span)],
                help=["rename one of them"],
            )
            return
        if isinstance(item, ast.BlockDef):
            prog.blocks[item.name] = item
            if main:
                prog.main_blocks.append(item.name)
        else:
            prog.networks[item.name] = item
            if main:
                prog.main_networks.append(item.name)

    def params_once(self, item: ast.BlockDef | ast.NetworkDef) -> None:
        """E412 for each parameter named like one before it."""
        first: dict[str, ast.Param] = {}
        for p in item.params:
            if p.name in first:
                what = "block" if isinstance(item, ast.BlockDef) else "network"
                self.diags.error(
                    E412,
                    f"{what} `{item.name}` has two parameters named `{p.name}`",
                    p.span,
                    notes=[Note("first named here", first[p.name].span)],
                    help=["rename one of them"],
                )
            else:
                first[p.name] = p
