"""The house of cisr_lib: no import cycles (imports inside functions count too), and long modules
are the ones docs/architecture.md names with its reason."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "cisr_lib"
ARCH = PKG.parent / "docs" / "architecture.md"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """cisr_lib modules imported anywhere in the file (top level or inside functions)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name and t != "cisr_lib":
                out.add(t)
    return out


def test_no_import_cycles():
    mods = _modules()
    graph = {n: _imports(p, n, set(mods)) for n, p in mods.items()}
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycles.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_the_walker_sees_imports_inside_functions(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from cisr_lib.train import train\n    import cisr_lib.models.psi\n")
    assert _imports(f, "cisr_lib.x", {"cisr_lib.train", "cisr_lib.models", "cisr_lib.models.psi"}) == {
        "cisr_lib.train", "cisr_lib.models.psi"}


def test_long_modules_are_explained_in_docs_architecture():
    text = ARCH.read_text().split("## Modules over 400 lines", 1)[1].split("\n## ", 1)[0]  # that section's table
    long = sorted(n for n, p in _modules().items() if len(p.read_text().splitlines()) > MAX_LINES)
    missing = [n for n in long if f"`{n}`" not in text]
    assert not missing, f"over {MAX_LINES} lines without a reason in docs/architecture.md: {missing}"


def test_no_module_imports_another_modules_private_names():
    """A name another module needs is public (issue: private names imported across modules)."""
    import ast

    found = []
    for f in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cisr_lib"):
                found += [f"{f.relative_to(PKG.parent)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []
