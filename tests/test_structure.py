"""The package's shape: no import cycle between modules or between packages, and no project
import hidden inside a function unless a comment gives its cost reason."""
import ast
from pathlib import Path

import config

PACKAGE = config.ROOT / "cvtasks"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(config.ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's project imports (a ``from package import name`` counts the submodule ``name``
    when there is one), at the top or inside functions."""
    edges = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cvtasks"):
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(modules)
                found |= subs or {node.module}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("cvtasks")}
        edges[name] = {m for m in found if m in modules and m != name}
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(comp)

    for v in list(edges):
        if v not in index:
            visit(v)
    return out


def _package(module: str, modules: dict[str, Path]) -> str:
    """cvtasks.fashion.task -> cvtasks.fashion; a top-level module is its own unit."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or modules[module].name == "__init__.py" else module


def test_no_import_cycle_between_modules_or_packages():
    modules = _modules()
    edges = _imports(modules)
    assert _cycles(edges) == []
    packages: dict[str, set[str]] = {}
    for src, targets in edges.items():
        a = _package(src, modules)
        packages.setdefault(a, set()).update(_package(t, modules) for t in targets if _package(t, modules) != a)
    # a package's __init__ importing its own submodules is not a cycle between packages
    assert _cycles(packages) == []


def test_project_imports_inside_functions_say_why():
    """An import of a project module inside a function needs a comment just above it (or on its
    line) that gives the reason: start-up cost, an optional dependency, an online-only path."""
    silent = []
    for name, path in _modules().items():
        lines = path.read_text().splitlines()
        for func in ast.walk(ast.parse(path.read_text())):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                    if not (module or "").startswith("cvtasks"):
                        continue
                    k = node.lineno - 2
                    while k >= 0 and (lines[k].strip().startswith(("from ", "import ")) or not lines[k].strip()):
                        k -= 1
                    if "#" not in lines[node.lineno - 1] and not lines[k].strip().startswith("#"):
                        silent.append(f"{name}:{node.lineno}")
    assert silent == []


def test_no_function_takes_more_than_eight_parameters():
    """Long signatures are config unpacked by hand: pass the config (or a small options object)."""
    long = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in a.posonlyargs + a.args + a.kwonlyargs] + [x.arg for x in (a.vararg, a.kwarg) if x]
                count = len(names) - (names[:1] in (["self"], ["cls"]))
                if count > 8:
                    long.append(f"{name}.{node.name} ({count})")
    assert long == []


def test_the_architecture_page_names_every_module():
    page = (config.ROOT / "docs" / "ARCHITECTURE.md").read_text()
    unnamed = [name for name, path in _modules().items()
               if path.name != "__init__.py" and f"`{path.stem}" not in page and f"{path.stem}`" not in page
               and f" {path.stem}," not in page]
    assert unnamed == []


def test_a_short_module_alias_means_one_module_everywhere():
    """``import ... as E``: a one- or two-letter alias stands for modules of one name (every task's
    ``evaluation`` may be E), never for two different ones in two files."""
    meaning: dict[str, set[str]] = {}
    for path in [*PACKAGE.rglob("*.py"), *(config.ROOT / "bench").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.asname and len(alias.asname) <= 2:
                        meaning.setdefault(alias.asname, set()).add(alias.name.rsplit(".", 1)[-1])
    assert {a: names for a, names in meaning.items() if len(names) > 1} == {}
