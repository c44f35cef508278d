"""No import circle between medsr's modules, counting imports inside functions too.

Every module under ``src/medsr`` is parsed with :mod:`ast` (nothing is imported). Each
``import medsr.x`` and ``from medsr.x import y`` (relative ones resolved) is an edge from
the importing module to the module it names, wherever the statement sits: at module level
or inside a function, because a function-level import only delays the circle. Rules:

- an import of a package is an import of its ``__init__``; ``from pkg import name`` where
  ``name`` is a submodule is an import of that submodule. The ancestor packages Python
  runs on the way (``medsr.infer`` for ``medsr.infer.api``) are not edges: a package's
  ``__init__`` importing its own submodules is how packages work;
- imports under ``if TYPE_CHECKING:`` are not edges: they never run;
- imports inside a module-level ``__getattr__`` of a package ``__init__`` are not edges:
  that is a lazy re-export (PEP 562), run only when a caller asks the package for a name,
  so the ``__init__`` defines nothing the re-exported module could need.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SOURCE = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "medsr"


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, a package named by its ``__init__.py``."""
    modules: dict[str, Path] = {}
    for path in sorted((SOURCE / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SOURCE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_statements(tree: ast.Module, is_package: bool) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements that can run, per the rules in the module docstring."""
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        if (
            is_package
            and node in tree.body
            and isinstance(node, ast.FunctionDef)
            and node.name == "__getattr__"
        ):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        pending.extend(ast.iter_child_nodes(node))


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """``name`` if it is a module, else its longest prefix that is (``medsr.x.func``)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(name: str, modules: dict[str, Path]) -> set[str]:
    """The medsr modules ``name`` imports, anywhere in its code."""
    path = modules[name]
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in _import_statements(tree, is_package):
        if isinstance(node, ast.Import):
            targets.update(_known(alias.name, modules) for alias in node.names)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        if source != PACKAGE and not source.startswith(PACKAGE + "."):
            continue
        for alias in node.names:
            submodule = f"{source}.{alias.name}"
            targets.add(submodule if submodule in modules else _known(source, modules))
    return {t for t in targets if t is not None and t != name}


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imports_of(name, modules) for name in modules}


def knots(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): the
    sets of modules that all import each other, directly or not."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return components


def shortest_cycle(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through ``component[0]`` inside the component, first module repeated."""
    members = set(component)
    start = component[0]
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & members):
                if target == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if target not in previous:
                    previous[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")


def test_checker_sees_function_level_relative_and_package_imports(tmp_path: Path) -> None:
    """The rules on a made-up package: a circle through a function-level relative import is
    found; TYPE_CHECKING and a package's lazy ``__getattr__`` are not edges."""
    modules = {
        "medsr": tmp_path / "__init__.py",
        "medsr.a": tmp_path / "a.py",
        "medsr.b": tmp_path / "b" / "__init__.py",
        "medsr.b.c": tmp_path / "b" / "c.py",
    }
    sources = {
        "medsr": "def __getattr__(name):\n    from medsr.a import thing\n",
        "medsr.a": "from medsr.b import c\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import medsr\n",
        "medsr.b": "from medsr.b.c import helper\n",
        "medsr.b.c": "def helper():\n    from .. import a\n",
    }
    for name, text in sources.items():
        modules[name].parent.mkdir(parents=True, exist_ok=True)
        modules[name].write_text(text)
    graph = {name: imports_of(name, modules) for name in modules}
    assert graph == {
        "medsr": set(),
        "medsr.a": {"medsr.b.c"},
        "medsr.b": {"medsr.b.c"},
        "medsr.b.c": {"medsr.a"},
    }
    assert knots(graph) == [["medsr.a", "medsr.b.c"]]
    assert describe(["medsr.a", "medsr.b.c"], graph) == "medsr.a -> medsr.b.c -> medsr.a"


def describe(knot: list[str], graph: dict[str, set[str]]) -> str:
    """``a -> b -> a``, plus the other modules caught in the same knot, if any."""
    cycle = shortest_cycle(knot, graph)
    others = sorted(set(knot) - set(cycle))
    return " -> ".join(cycle) + (f"  (same knot: {', '.join(others)})" if others else "")


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert "medsr.infer.runner" in graph["medsr.infer.pipeline"]  # the parser sees imports
    found = knots(graph)
    assert not found, "import cycles (A -> B: A imports B):\n" + "\n".join(
        describe(knot, graph) for knot in found
    )
