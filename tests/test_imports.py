"""The package's import graph: no cycles between files, and imports only downward.

Every `import` statement of every module of lcasr_jax is read with `ast` (module level,
inside functions, relative or absolute); `from pkg import name` counts as an import of
`pkg.name` where that is a module, else of `pkg`. Inside a package, `from pkg import name`
(a sibling through the package's face) also counts as an import of `pkg` itself: Python
runs `pkg/__init__` for it, so a face that imports its submodules makes a cycle.
Commands (`cli` modules) are imported by no module of the package: they are thin
`main(argv)`s over library functions, found by `lcasr_jax.cli` through its command table.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "lcasr_jax"

# Lowest first: a module may import its own layer and the layers below it, never above.
LAYERS = (
    ("lcasr_jax.sharding", "lcasr_jax.distributed", "lcasr_jax.configs", "lcasr_jax.validate",
     "lcasr_jax.files", "lcasr_jax.interrupts"),
    ("lcasr_jax.kernels",),
    ("lcasr_jax.data",),
    ("lcasr_jax.model", "lcasr_jax.decode"),
    ("lcasr_jax.checkpoints",),
    ("lcasr_jax.train", "lcasr_jax.eval"),
    ("lcasr_jax.figures",),
    ("lcasr_jax.analysis", "lcasr_jax.sweeps"),
    ("lcasr_jax.demo", "lcasr_jax.cli"),
)


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    """Dotted name -> file, for every .py under `root` (a package's name is its __init__)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The longest known module that `name` is or lies inside."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """Modules of the package that `module` (at `path`) imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[:len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                       for alias in node.names]
            if module.startswith(base + ".") and base in known:
                targets.append(base)  # a sibling through the package face runs its __init__
        else:
            continue
        for target in targets:
            found = _resolve(target, known)
            if found is not None and found != module:
                out.add(found)
    return out


def graph(root: Path = PACKAGE) -> dict[str, set[str]]:
    known = modules(root)
    return {name: imports(name, path, known) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a list of modules, first repeated at the end) per strongly connected
    component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(_cycle_in(component, edges))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _cycle_in(component: set[str], edges: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    start = min(component)
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v] & component):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in component {component}")


def layer(module: str) -> int | None:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return rank
    return None


def upward(edges: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a module in a higher layer than the importer's."""
    bad = []
    for src, targets in sorted(edges.items()):
        for dst in sorted(targets):
            if layer(src) is not None and layer(dst) is not None and layer(dst) > layer(src):
                bad.append(f"{src} -> {dst}")
    return bad


def is_command(module: str) -> bool:
    """A command module: `lcasr_jax.cli` (the command table) or any `*.cli`."""
    return module.rpartition(".")[2] == "cli"


def command_imports(edges: dict[str, set[str]]) -> list[str]:
    """'a -> b' for every import of a command module, except a command handing over to the
    command of a sub-package (`data.cli` -> `data.synth.cli`)."""
    def delegates(src: str, dst: str) -> bool:
        return is_command(src) and dst.startswith(src.rpartition(".")[0] + ".")

    return [f"{src} -> {dst}" for src, targets in sorted(edges.items())
            for dst in sorted(targets) if is_command(dst) and not delegates(src, dst)]


def test_no_import_cycles_between_files():
    found = cycles(graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_imports_only_go_down_the_layers():
    bad = upward(graph())
    assert not bad, "upward imports (layers: " + " < ".join(
        "/".join(p.removeprefix("lcasr_jax.") for p in group) for group in LAYERS
    ) + "):\n" + "\n".join(bad)


def test_no_module_imports_a_command():
    bad = command_imports(graph())
    assert not bad, ("library code lives outside `cli` modules; these import one:\n"
                     + "\n".join(bad))


def test_every_module_has_a_layer():
    """The package itself (lazy re-exports) aside, a new top-level module must be placed."""
    missing = [m for m in modules() if m != "lcasr_jax" and layer(m) is None]
    assert not missing, missing


def test_the_checker_finds_cycles_and_upward_imports(tmp_path):
    """A package with a function-level import cycle and a relative upward import."""
    pkg = tmp_path / "lcasr_jax"
    (pkg / "kernels").mkdir(parents=True)
    (pkg / "model").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "kernels" / "__init__.py").write_text("")
    (pkg / "model" / "__init__.py").write_text("")
    (pkg / "kernels" / "a.py").write_text("def f():\n    from ..model import b\n")
    (pkg / "model" / "b.py").write_text("from lcasr_jax.model import c\n")
    (pkg / "model" / "c.py").write_text("import lcasr_jax.model.b as b\n")
    edges = graph(pkg)
    assert edges["lcasr_jax.kernels.a"] == {"lcasr_jax.model.b"}
    assert cycles(edges) == [["lcasr_jax.model.b", "lcasr_jax.model.c", "lcasr_jax.model.b"]]
    assert upward(edges) == ["lcasr_jax.kernels.a -> lcasr_jax.model.b"]


def test_the_checker_finds_face_cycles_and_command_imports(tmp_path):
    """A package whose face imports a submodule that imports a sibling through the face,
    and a library module that imports a command (checked against the previous layout:
    kernels/ctc, data/sources and eval/cli were all found)."""
    pkg = tmp_path / "lcasr_jax"
    (pkg / "kernels" / "ctc").mkdir(parents=True)
    (pkg / "eval").mkdir()
    for init in ("", "kernels", "eval"):
        (pkg / init / "__init__.py").write_text("")
    (pkg / "kernels" / "ctc" / "__init__.py").write_text("from lcasr_jax.kernels.ctc import xla\n")
    (pkg / "kernels" / "ctc" / "xla.py").write_text("from lcasr_jax.kernels.ctc import halves\n")
    (pkg / "kernels" / "ctc" / "halves.py").write_text("")
    (pkg / "eval" / "cli.py").write_text("")
    (pkg / "eval" / "sweep.py").write_text("def f():\n    from .cli import load\n")
    edges = graph(pkg)
    assert cycles(edges) == [["lcasr_jax.kernels.ctc", "lcasr_jax.kernels.ctc.xla",
                              "lcasr_jax.kernels.ctc"]]
    assert command_imports(edges) == ["lcasr_jax.eval.sweep -> lcasr_jax.eval.cli"]
    (pkg / "kernels" / "ctc" / "xla.py").write_text(
        "import lcasr_jax.kernels.ctc.halves as halves\n")
    assert cycles(graph(pkg)) == []
