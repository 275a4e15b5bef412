"""The names a compiled module's submodules get: the spec's paths where torch can take them.

Pure naming logic, without torch, so that `cnnspec check` can warn (W006)
about a module name torch cannot take without importing the fx backend.
"""

from __future__ import annotations

import keyword
import unicodedata
from collections.abc import Iterable, Iterator

from cnnspec.ir import Graph, Node

#: Public attributes of nn.Module (its instances' `training` included): add_module refuses a
#: submodule of that name at any level. Kept as a literal so that checking a spec need not import
#: torch; a test compares it with torch's.
MODULE_ATTRS = frozenset(
    """T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches
    eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu load_state_dict
    modules mtia named_buffers named_children named_modules named_parameters parameters register_backward_hook
    register_buffer register_forward_hook register_forward_pre_hook register_full_backward_hook
    register_full_backward_pre_hook register_load_state_dict_post_hook register_load_state_dict_pre_hook
    register_module register_parameter register_state_dict_post_hook register_state_dict_pre_hook requires_grad_
    set_extra_state set_submodule share_memory state_dict to to_empty train training type xpu zero_grad""".split()  # noqa: SIM905  (a list literal would be 60 lines)
)
#: Public attributes that only the compiled module itself has (fx.GraphModule's and
#: AuxOutputsGraphModule's): a clash at the top level only, since the containers below it, and
#: every module of the exported Python, are plain nn.Modules.
ROOT_ATTRS = frozenset(
    """add_submodule aux_names aux_weights code delete_all_unused_submodules delete_submodule graph meta
    print_readable recompile shape_env to_folder""".split()  # noqa: SIM905
)
#: Every public attribute of the compiled module: a submodule of that name would clash with them.
TORCH_ATTRS = MODULE_ATTRS | ROOT_ATTRS


#: Characters a name reached through getattr(m, "name") must not hold: the path separator, and
#: those fx's generated string literal would have to escape.
_UNQUOTABLE = frozenset(".\\\"'")


def safe_name(name: str, top: bool = True) -> bool:
    """Whether torch and the generated Python can use name as a submodule attribute as it is.

    torch takes any name without a `.` that is not already an attribute of
    the module, and fx and the generated Python reach a name that is not an
    identifier through `getattr(m, "name")`: digits (Sequential-style "0",
    "1", as torchvision names them) and names such as torchvision RegNet's
    `block1-0` are kept. A name written `m.name` in generated code must be an
    identifier that Unicode normalisation leaves alone (Python would read
    `self.ﬁ` as `self.fi`), not a keyword (`self.import` does not parse), not
    an attribute of nn.Module, nor of GraphModule for a submodule of the
    compiled module itself (top), and not private (a leading `_`: nn.Module's
    own bookkeeping). A name that is not an identifier must be printable
    without a quote or a backslash, so that fx can write it in a string
    literal. Other names that the generated code uses (`self`, `torch`,
    builtins) are fine: the fx backend names its values apart from them.
    """
    if name.isascii() and name.isdigit():
        return True
    if not name.isidentifier():
        return bool(name) and name.isprintable() and _UNQUOTABLE.isdisjoint(name)
    return (
        unicodedata.normalize("NFKC", name) == name
        and not keyword.iskeyword(name)
        and name not in (TORCH_ATTRS if top else MODULE_ATTRS)
        and not name.startswith("_")
    )


def _sanitise(name: str) -> str:
    text = unicodedata.normalize("NFKC", name)
    text = "".join(c if (c.isascii() and (c.isalnum() or c == "_")) or c.isidentifier() else "_" for c in text)
    text = text.strip("_") or "m"
    if not text.isidentifier() or unicodedata.normalize("NFKC", text) != text:
        text = "m_" + "".join(c if c.isascii() and c.isalnum() else "_" for c in text)
    if keyword.iskeyword(text) or text in TORCH_ATTRS:
        text += "_"
    return text


def safe_paths(paths: Iterable[str]) -> dict[str, str]:
    """A safe module path for every spec module path: unchanged where torch accepts it.

    Each unsafe component is mapped to a sanitised name (`forward` becomes
    `forward_`, `import` becomes `import_`, `a b` becomes `a_b`), made unique
    among its siblings, kept names included (`x_2` when `x_` is taken).
    """
    paths = list(dict.fromkeys(paths))
    # Check each distinct name once: a network of 10,000 layers has a few dozen.
    tops = {path.partition(".")[0] for path in paths}
    inner = set(".".join(path.partition(".")[2] for path in paths).split(".")) - {""}
    unsafe = ({part for part in tops if not safe_name(part)}, {part for part in inner if not safe_name(part, False)})
    if not any(unsafe):
        return {path: path for path in paths}
    kept: dict[str, set[str]] = {}
    for path in paths:
        parts = path.split(".")
        for i, part in enumerate(parts):
            if part not in unsafe[i > 0]:
                kept.setdefault(".".join(parts[:i]), set()).add(part)
    assigned: dict[tuple[str, str], str] = {}
    taken = {k: set(v) for k, v in kept.items()}
    out: dict[str, str] = {}
    for path in paths:
        parts = path.split(".")
        if parts[0] not in unsafe[0] and unsafe[1].isdisjoint(parts[1:]):
            out[path] = path
            continue
        new = []
        for i, part in enumerate(parts):
            parent = ".".join(parts[:i])
            if part not in unsafe[i > 0]:
                new.append(part)
                continue
            key = (parent, part)
            if key not in assigned:
                base = _sanitise(part)
                used = taken.setdefault(parent, set())
                cand, n = base, 1
                while cand in used:
                    n += 1
                    cand = f"{base}_{n}"
                used.add(cand)
                assigned[key] = cand
            new.append(assigned[key])
        out[path] = ".".join(new)
    return out


def module_paths(graph: Graph) -> dict[str, str]:
    """Spec module path -> the path the compiled module uses, for every layer with a module."""
    return safe_paths(n.path for n in graph.layers() if n.has_module)


def renamed_modules(graph: Graph) -> Iterator[tuple[Node, str, str]]:
    """(node, spec path, compiled path) for every module whose path had to change."""
    layers = [n for n in graph.layers() if n.has_module]
    # Check each distinct name once: a network of 10,000 layers has a few dozen.
    if all(map(safe_name, set(".".join(n.path for n in layers).split(".")))):
        return
    renamed = safe_paths(n.path for n in layers)
    for node in layers:
        if renamed[node.path] != node.path:
            yield node, node.path, renamed[node.path]


def fx_name(path: str) -> str:
    """A valid Python identifier for an fx node or class name derived from a spec name.

    Normalised as Python normalises identifiers, so that the name written is
    the name Python reads.
    """
    path = unicodedata.normalize("NFKC", path)
    name = "".join(c if c.isidentifier() or (c.isalnum() and c.isascii()) or c == "_" else "_" for c in path)
    if not name or not name.isidentifier() or keyword.iskeyword(name):
        name = "_" + "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in name)
    return name
