"""The engines' walk is written once (issue 35): only `inference.cohort` asks a policy
which rows leave (`fires`) and drops them from its state (`keep`); the torch and ONNX
Runtime engines are `inference.engine.Engine`s over a backend, each constructed through
`Engine.__init__`, and neither subclasses the other.

Read from the source with `ast`, so a second walk fails here however it is spelt.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "early_exit"
POLICIES = PACKAGE / "exits" / "policies"  # where `fires` and `keep` are defined
WALK = PACKAGE / "inference" / "cohort.py"
SOURCES = sorted(
    p
    for p in [*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    if POLICIES not in p.parents
)
WALK_CALLS = {"fires", "keep"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def walk_calls(tree: ast.AST) -> list[tuple[str, int]]:
    """(method, line) of every `x.fires(...)` / `x.keep(...)` call."""
    return [
        (node.func.attr, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WALK_CALLS
    ]


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_only_the_cohort_walks_exits(path):
    if path != WALK:
        found = walk_calls(ast.parse(path.read_text(), str(path)))
        assert not found, (
            f"{rel(path)}: {found}: decides which rows leave at an exit outside "
            "early_exit.inference.cohort; step a Cohort over the engine's backend instead"
        )


def test_the_walk_is_there_to_guard():
    assert {name for name, _ in walk_calls(ast.parse(WALK.read_text()))} == WALK_CALLS


def test_the_guard_catches_a_second_walk():
    copy = "def run(policy, state, logits):\n    fired = policy.fires(0, logits, None, state)\n"
    copy += "    return policy.keep(state, ~fired)\n"
    assert walk_calls(ast.parse(copy)) == [("fires", 2), ("keep", 3)]


def classes(path: Path) -> dict[str, ast.ClassDef]:
    tree = ast.parse(path.read_text(), str(path))
    return {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}


def calls_super_init(cls: ast.ClassDef) -> bool:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            return any(
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Attribute)
                and call.func.attr == "__init__"
                and isinstance(call.func.value, ast.Call)
                and getattr(call.func.value.func, "id", None) == "super"
                for call in ast.walk(node)
            )
    return True  # no __init__ of its own: Engine's runs


def test_both_engines_are_engines_built_through_its_constructor():
    from early_exit.inference.engine import EarlyExitEngine, Engine
    from early_exit.inference.ort_engine import OrtEngine

    assert issubclass(EarlyExitEngine, Engine) and issubclass(OrtEngine, Engine)
    assert not issubclass(OrtEngine, EarlyExitEngine)
    assert not issubclass(EarlyExitEngine, OrtEngine)
    found = {
        **classes(PACKAGE / "inference" / "engine.py"),
        **classes(PACKAGE / "inference" / "ort_engine.py"),
    }
    for name in ("EarlyExitEngine", "OrtEngine"):
        assert calls_super_init(found[name]), f"{name}.__init__ skips Engine.__init__"
