"""No import cycles in qa/ or bench/, counting imports inside functions (a cycle hidden in a function still ties
the two modules together: neither can be read, tested or moved without the other)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qa", "bench")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (module level, functions, TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `from qa.store import segments` names a module
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    modules = set(paths)
    graph = {name: _imports(path, name, modules) for name, path in paths.items()}
    for name in graph:  # importing a.b.c runs a/__init__ and a/b/__init__ first; those edges are implied, not drawn
        graph[name] = {t for t in graph[name] if not name.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_finder_sees_a_function_level_cycle():
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_graph_counts_function_level_imports():
    graph = import_graph()
    assert "qa.indexing" in graph["qa.cli"]  # qa/cli.py imports it inside its commands


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


#: The entry points: the only modules that read the environment, import qa.environment or end the process.
#: qa/written/local.py and serve.py are `python -m` commands (a model server and its child process).
ENTRY_POINTS = {"qa.cli", "qa.web.cli", "qa.environment", "qa.written.local", "qa.written.serve",
                "qa.encoders"}  # `python -m qa.encoders` (make encoders): its main() only
#: Gradio and uvicorn take these two only from the environment: set where the web app is built and launched.
SERVER_VARIABLES = {"qa.web.app": 2}


def test_the_environment_is_read_only_at_the_entry_points():
    modules = {_module_name(p): p for p in (ROOT / "qa").rglob("*.py")}
    graph = import_graph()
    for name, path in sorted(modules.items()):
        if name in ENTRY_POINTS:
            continue
        text = path.read_text()
        assert "qa.environment" not in graph[name], f"{name} imports qa.environment: take settings as arguments"
        for word in ("from_env", "getenv", "SystemExit", "sys.exit"):
            assert word not in text, f"{name} uses {word}: read settings and exit only at the entry points"
        assert text.count("os.environ") == SERVER_VARIABLES.get(name, 0), f"{name} reads os.environ"


def test_the_answering_map_names_each_of_its_modules():
    """qa/answering/__init__.py is the newcomer's map of the answerer: every module of the package is on it."""
    package = ROOT / "qa" / "answering"
    doc = ast.get_docstring(ast.parse((package / "__init__.py").read_text())) or ""
    files = sorted(p.name for p in [*package.glob("*.py"), *package.glob("*.json")] if p.name != "__init__.py")
    assert files and [f for f in files if f"``{f}``" not in doc] == []
