"""The tree reads as the pipeline: no import circle anywhere in the package, and each layer imports only
the layers below it — counting imports inside functions (read from the source, nothing is imported).

Layers, lowest first: ``core`` (numpy/scipy only) → ``blender`` (bpy) → ``cli`` (the command line) →
the entry points (``__main__``, ``headless``). Inside ``core`` the stages form a chain as well
(:data:`CORE_ORDER`): a stage imports only the stages before it.
"""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "voca_addon"
LAYERS = ("core", "blender", "cli")
# core's stages in pipeline order; a stage may import itself and those listed before it.
CORE_ORDER = ("errors", "faults", "errorlog", "progress", "claims", "outputs", "caches", "formats", "flame", "speech",
              "face", "models", "emotion", "phonemes", "animation", "articulation", "character", "living",
              "engine", "batch")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict:
    return {module_name(p): p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}


def imports_of(name: str, path: Path, known: dict) -> set:
    """Every package module ``name`` imports, at any depth of its code (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:          # a name inside a module → the module
                t = t.rpartition(".")[0]
            if t and t != name and t.startswith("voca_addon"):
                found.add(t)
    return found


@pytest.fixture(scope="module")
def graph():
    known = modules()
    return {n: imports_of(n, p, known) for n, p in known.items()}



def test_imports_form_no_circle(graph):
    """Depth-first search over every import edge (package ``__init__`` modules included)."""
    state, stack_path, circles = {}, [], []

    def visit(n):
        state[n] = "open"
        stack_path.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                circles.append(stack_path[stack_path.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack_path.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)
    assert not circles, "import circles:\n" + "\n".join(" → ".join(c) for c in circles)


def _layer(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "entry"


def test_each_layer_imports_only_the_layers_below(graph):
    rank = {"core": 0, "blender": 1, "cli": 2, "entry": 3}
    wrong = [f"{a} → {b}" for a, targets in graph.items() for b in targets
             if rank[_layer(b)] > rank[_layer(a)]]
    assert not wrong, "imports up the layers:\n" + "\n".join(sorted(wrong))


def test_core_stages_import_only_earlier_stages(graph):
    def stage(name):
        parts = name.split(".")
        return parts[2] if len(parts) > 2 else None
    order = {s: i for i, s in enumerate(CORE_ORDER)}
    core = {n: t for n, t in graph.items() if _layer(n) == "core" and stage(n)}
    unknown = sorted({stage(n) for n in core} - set(order))
    assert not unknown, f"core stages missing from CORE_ORDER: {unknown}"
    wrong = [f"{a} → {b}" for a, targets in core.items() for b in targets
             if stage(b) and order[stage(b)] > order[stage(a)]]
    assert not wrong, "core stages importing a later stage:\n" + "\n".join(sorted(wrong))


def test_command_modules_import_no_other_command(graph):
    """A command imports cli.common, cli.articulation and its own sub-package, never cli.main or another
    command (the batch's own modules may import each other)."""
    shared = {"voca_addon.cli", "voca_addon.cli.common", "voca_addon.cli.articulation"}
    wrong = []
    for a, targets in graph.items():
        if not a.startswith("voca_addon.cli.") or a in shared or a == "voca_addon.cli.main":
            continue
        for b in targets:
            if _layer(b) != "cli" or b in shared:
                continue
            if a.startswith("voca_addon.cli.batch") and b.startswith("voca_addon.cli.batch"):
                continue
            wrong.append(f"{a} → {b}")
    assert not wrong, "commands importing other commands:\n" + "\n".join(sorted(wrong))


def test_the_graph_sees_imports_inside_functions(graph):
    """The check would be empty if function-level imports were missed: these are known to be inside
    functions (lazy imports that keep ``--help`` instant)."""
    assert "voca_addon.core.engine" in graph["voca_addon.cli.infer"]
    assert "voca_addon.blender.blendfile" in graph["voca_addon.cli.animate"]
