"""Imported files' ASTs kept on disk between checks, the way Python keeps bytecode.

Why it exists: parsing is about 40% of checking ResNet-152 (`resnet.cnn`, the file it
imports, costs 34 M of the check's 91 M instructions, nearly all of it inside Lark), and
without it the in-process budget (20 ms, docs/performance.md) holds only in the machine's fast
minutes. Reading a kept AST costs about a fifteenth of parsing the file again. Nothing
else in the pipeline keeps anything between checks.

What is kept: one entry per imported file, by the name its spans carry; the main file is
never kept (it is the one being edited; see cnnspec.syntax.loader). An entry holds a stamp
of everything the module was made from, then the module, which is read only when the stamp
matches: the file's name and text, this package's version, Python's, and the grammar and
the syntax stage's code; an entry whose stamp differs is parsed again and replaced. Only
files that parse without errors are kept, so every diagnostic of a syntax error still comes
from the parser.

Where: CNNSPEC_CACHE_DIR, else $XDG_CACHE_HOME/cnnspec, else ~/.cache/cnnspec; an empty
CNNSPEC_CACHE_DIR turns it off. Entries are pickles, which run code when read, so a folder
another user could write to is not read (nor written). A cache never fails a check: an entry
that cannot be read or written is parsed as if it were absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import stat
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from cnnspec.syntax import ast
from cnnspec.syntax.parser import grammar_text

#: The environment variable that moves the cache (a folder) or, set empty, turns it off.
CACHE_VARIABLE = "CNNSPEC_CACHE_DIR"
#: Bumped when an entry's layout changes.
FORMAT = 1


def cache_dir() -> Path | None:
    """The folder entries go in, from the environment; None when the cache is off."""
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cnnspec" / f"parsed-{FORMAT}"


@cache
def code_stamp() -> str:
    """What the ASTs this process builds depend on besides their file: the grammar, the syntax
    stage's modules, this package's version and Python's.

    Worked out once a process, as the parser itself is built once (parser._build_parser): it
    stands for the code this process runs, which stays the same while it runs even if the files
    change on disk meanwhile, and reading those files at every check would cost a twentieth of it.
    """
    from cnnspec import __version__  # here: cnnspec/__init__.py imports cnnspec.api, which imports this module

    h = hashlib.sha256(f"{FORMAT}\0{__version__}\0{sys.version}\0".encode())
    h.update(grammar_text().encode())
    for module in sorted(Path(__file__).parent.glob("*.py")):
        h.update(module.name.encode() + b"\0" + module.read_bytes() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class ParsedOnDisk:
    """The loader's store of imported files' modules by (display name, text), kept in folder.

    Made for one check (`ParsedOnDisk.from_environment()`); code is code_stamp().
    """

    folder: Path
    code: str

    @staticmethod
    def from_environment() -> ParsedOnDisk | None:
        """The cache the environment asks for, or None when it is off or its folder is not safe."""
        folder = cache_dir()
        if folder is None or not _private(folder):
            return None
        return ParsedOnDisk(folder, code_stamp())

    def get(self, key: tuple[str, str]) -> ast.Module | None:
        """The kept module of the file named key[0] whose text is key[1], or None. The entry's
        stamp is read first, and its module only when the stamp is this file's."""
        try:
            with open(self._entry(key[0]), "rb") as f:
                if pickle.load(f) != self._stamp(key):
                    return None
                module = pickle.load(f)
        except Exception:  # a missing, damaged or foreign entry is only a miss
            return None
        return module if isinstance(module, ast.Module) else None

    def __setitem__(self, key: tuple[str, str], module: ast.Module) -> None:
        """Keep module as the AST of key's file and text (a write another check makes at the same
        moment is replaced whole, never mixed: each entry is written aside, then renamed)."""
        try:
            data = pickle.dumps(self._stamp(key)) + pickle.dumps(module, protocol=pickle.HIGHEST_PROTOCOL)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".entry-", suffix=".tmp")
        except Exception:  # an AST too deep to pickle, or a folder gone read-only, only goes unkept
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._entry(key[0]))
        except OSError:  # a full disk, say
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _entry(self, name: str) -> Path:
        return self.folder / f"{_digest(name)[:32]}.pickle"

    def _stamp(self, key: tuple[str, str]) -> str:
        name, text = key
        return _digest(f"{self.code}\0{name}\0{text}")


def _digest(text: str) -> str:
    # surrogatepass: a file name that is not UTF-8 on disk reaches Python with lone surrogates
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _private(folder: Path) -> bool:
    """Whether folder exists (it is made if missing, for this user only), belongs to this user
    and no one else can write to it."""
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = folder.stat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    getuid = getattr(os, "getuid", None)  # not on Windows, where the folder is the user's profile
    return getuid is None or st.st_uid == getuid()
