"""No import circles, between files or between folders (the data flow runs one way).

Every import of the package is read from the source, also those inside functions (a lazy
import is still a dependency); imports under ``if TYPE_CHECKING:`` are for annotations only
and never run, so they are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

import elektronn

PACKAGE = Path(elektronn.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(name: str) -> set[str]:
    """The package's modules that module ``name`` imports."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in _imports(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = package.split(".")
        base = base[: len(base) - node.level + 1] if node.level else []
        source = ".".join(base + ([node.module] if node.module else []))
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in MODULES else source)
    return {t for t in targets if t in MODULES and t != name}


def folder(name: str) -> str:
    """``elektronn.train.run`` -> ``train``; a top-level module (``arch``) is its own folder."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else "elektronn"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for succ in sorted(graph.get(node, ())):
            if state.get(succ) == 1:
                return stack[stack.index(succ) :] + [succ]
            if succ not in state and (cycle := visit(succ)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


GRAPH = {name: imported_modules(name) for name in MODULES}


def test_the_import_walker_sees_lazy_imports():
    assert "elektronn.train.console" in GRAPH["elektronn.train.run"]  # imported in a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_circle_between_files():
    # a package's __init__ re-exporting its modules is not a circle of the modules themselves
    files = {
        name: {t for t in targets if not name.startswith(t + ".")}
        for name, targets in GRAPH.items()
    }
    assert find_cycle(files) is None


def test_no_import_circle_between_folders():
    folders: dict[str, set[str]] = {}
    for name, targets in GRAPH.items():
        folders.setdefault(folder(name), set()).update(
            folder(t) for t in targets if folder(t) != folder(name)
        )
    assert find_cycle(folders) is None, folders


#: The layers of the package, lowest first: a module imports only from its own layer's folder
#: or from lower layers (docs/internals.md draws the same picture).
LAYERS = (
    {"errors", "axes", "terminal", "streams", "commands", "h5files", "__init__"},
    {"arch"},
    {"config", "device"},
    {"data"},
    {"net"},
    {"blockwise"},
    {"predict"},
    {"evaluate", "export", "segment", "labels"},
    {"train"},
    {"examples"},
)


def layer(name: str) -> int:
    parts = name.split(".")
    part = parts[1] if len(parts) > 1 else "__init__"
    return next(i for i, names in enumerate(LAYERS) if part in names)


def test_imports_go_down_the_layers_only():
    upward = sorted(
        f"{name} -> {t}"
        for name, targets in GRAPH.items()
        for t in targets
        if layer(t) > layer(name) and not (name == "elektronn" and t.startswith("elektronn."))
    )
    assert not upward, upward
