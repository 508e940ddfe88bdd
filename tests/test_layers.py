"""Imports run one way: ``domain`` and ``config`` ← ``storage`` ← ``channels`` ← ``dispatch`` ←
everything above (the web, the console, the bots, the CLI), and no module imports itself
round a cycle. Read from the source (ast), type-checking imports and imports inside functions
included: a hint is a dependency too. The provider sandbox stands apart: it uses only ``config``
and ``domain``, and only the web app and the CLI mount it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "gongkai"
FLOORS = {"config": 0, "domain": 0, "storage": 1, "channels": 2, "dispatch": 3}
TOP = 4  # every other package: bot/ today


def floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS.get(parts[1], TOP) if len(parts) > 1 else 0


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules this file imports. ``from pkg import sub`` counts as importing
    ``pkg.sub`` only: ``pkg`` is a parent already being imported."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            subs = {f"{node.module}.{a.name}" for a in node.names} & known.keys()
            out |= subs or ({node.module} & known.keys())
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & known.keys()
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known) - {name} for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_from_a_floor_above_its_own():
    upward = [f"{a} → {b}" for a, bs in graph().items() for b in sorted(bs) if floor(b) > floor(a)]
    assert upward == []


def test_there_are_no_import_cycles():
    assert cycles(graph()) == []


SANDBOX_MAY_USE = ("gongkai.sandbox", "gongkai.config", "gongkai.domain")
MAY_MOUNT_SANDBOX = ("gongkai.sandbox", "gongkai.web", "gongkai.cli")


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


def test_the_sandbox_stands_apart():
    """The provider simulators speak the providers' protocols, not ours: they use nothing of
    Gongkai's but settings and domain rules, and only the web app and the CLI mount them, so no
    channel or worker can come to depend on a simulator's behaviour."""
    edges = graph()
    uses = [
        f"{a} → {b}"
        for a, bs in edges.items()
        if _within(a, ("gongkai.sandbox",))
        for b in sorted(bs)
        if not _within(b, SANDBOX_MAY_USE)
    ]
    mounted_by = [
        f"{a} → {b}"
        for a, bs in edges.items()
        if not _within(a, MAY_MOUNT_SANDBOX)
        for b in sorted(bs)
        if _within(b, ("gongkai.sandbox",))
    ]
    assert uses == [] and mounted_by == []
    assert "gongkai.sandbox.wecom_robot" in edges  # the check sees the package


def test_the_checks_would_see_an_upward_import_and_a_cycle():
    assert floor("gongkai.dispatch.worker") > floor("gongkai.channels.base")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    edges = graph()
    assert "gongkai.storage.models" in edges["gongkai.dispatch.delivery"]  # it reads imports
