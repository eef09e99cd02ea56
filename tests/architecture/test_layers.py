"""The package's floors: a module imports only from floors below its own (or its own
package), and no two packages import each other (docs/architecture.md).

Read from the source with `ast` (nothing is imported), so a violation fails here before
it can hide behind a lazy import inside a function.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "early_exit"

# Bottom to top. A top-level module (cli.py) is its own package.
FLOORS = [
    ("support",),
    ("data", "modeling"),
    ("training", "decoder"),
    ("recipes", "exits"),
    ("inference", "analysis"),
    ("slides", "serving"),
    ("runners", "config", "cli"),
]
FLOOR = {name: level for level, names in enumerate(FLOORS) for name in names}


def package_of(module: str) -> str | None:
    """`early_exit.exits.sweep` -> "exits"; the root package and its `__version__` -> None."""
    parts = module.split(".")
    if parts[0] != "early_exit" or len(parts) == 1 or parts[1].startswith("__"):
        return None
    return parts[1]


def imports_of(path: Path) -> list[tuple[str, int]]:
    """(imported early_exit module, line) for every import in a file, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found += [(name, node.lineno) for name in names]
    return [(name, line) for name, line in found if name.startswith("early_exit")]


def module_name(path: Path, package_dir: Path) -> str:
    rel = path.relative_to(package_dir.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def package_edges(package_dir: Path) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> where, over every module of the package."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(package_dir.rglob("*.py")):
        source = package_of(module_name(path, package_dir))
        for name, line in imports_of(path):
            target = package_of(name)
            if source and target and target != source:
                where = f"{path.relative_to(package_dir.parent)}:{line} imports {name}"
                edges.setdefault((source, target), []).append(where)
    return edges


def violations(package_dir: Path) -> list[str]:
    """Every import that runs sideways or up a floor, and every package not on a floor."""
    edges = package_edges(package_dir)
    found = []
    for (source, target), where in sorted(edges.items()):
        if source not in FLOOR or target not in FLOOR:
            unknown = source if source not in FLOOR else target
            found.append(f"package {unknown!r} is on no floor (add it to FLOORS): {where[0]}")
        elif FLOOR[target] >= FLOOR[source]:
            found += [f"{w} (floor {FLOOR[source]} -> floor {FLOOR[target]})" for w in where]
    return found


def test_every_import_runs_down_a_floor():
    assert violations(PACKAGE) == []


def test_no_two_packages_import_each_other():
    pairs = set(package_edges(PACKAGE))
    assert sorted((a, b) for a, b in pairs if (b, a) in pairs) == []


def test_every_package_is_on_a_floor():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    assert packages | modules <= set(FLOOR)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "early_exit" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "early_exit"


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        # a lower floor reaching up, even lazily inside a function
        (
            {"training/loop.py": "def f():\n    from early_exit.recipes.losses import Stage\n"},
            "training/loop.py:2 imports early_exit.recipes.losses.Stage (floor 2 -> floor 3)",
        ),
        # sideways: two packages on one floor
        (
            {"inference/engine.py": "from early_exit.analysis import runs\n"},
            "inference/engine.py:1 imports early_exit.analysis.runs (floor 4 -> floor 4)",
        ),
        ({"extra/thing.py": "import early_exit.support.errors\n"}, "'extra' is on no floor"),
    ],
)
def test_the_check_catches_what_it_forbids(tmp_path, files, expected):
    package = write(tmp_path, {"support/errors.py": "", **files})
    assert any(expected in v for v in violations(package)), violations(package)


def test_a_downward_import_passes(tmp_path):
    package = write(tmp_path, {"exits/sweep.py": "from early_exit.support.atomic import x\n"})
    assert violations(package) == []
