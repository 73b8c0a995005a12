"""The lane owns its sale: the modules beside it (basket, payments, refunds, terminal administration, the
sale-close job) are decisions and database jobs it uses, so none of them may import the lane, and they
import each other without a loop. Read from the source, so a `TYPE_CHECKING` import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import storenode.lanes

PACKAGE = Path(storenode.lanes.__file__).parent


def imports() -> dict[str, set[str]]:
    """Each module of storenode.lanes and the modules of storenode.lanes it imports, anywhere in its body."""
    modules = {path.stem: path for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    found: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "storenode.lanes":
                deps |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("storenode.lanes."):
                deps.add((node.module or "").split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("storenode.lanes.")}
        found[name] = deps & modules.keys()
    return found


def test_no_module_beside_the_lane_imports_it() -> None:
    graph = imports()
    assert {"lane", "payments", "terminal_admin", "basket", "closing"} <= graph.keys()
    assert [name for name, deps in graph.items() if "lane" in deps] == []


def test_the_lane_modules_import_each_other_without_a_loop() -> None:
    graph = imports()
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import loop: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in sorted(graph[name]):
                visit(dep, (*path, name))
            done.add(name)

    for name in sorted(graph):
        visit(name, ())
