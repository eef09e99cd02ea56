"""Concepts written once (issue 35): "which knob for this run" is decided only by
`exits.operating_points` (`knob_for` / `point_rows`), and a run directory
(results/{task}/{method}/seed{seed}) is parsed back only by `support.layout`.

Read from the source with `ast`, so a second copy fails here however it is spelt.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "early_exit"
SOURCES = sorted([*PACKAGE.rglob("*.py"), *(ROOT / "scripts").glob("*.py")])
KNOB_HOME = PACKAGE / "exits" / "operating_points.py"
LAYOUT = PACKAGE / "support" / "layout.py"
# Build the workflow's table from every sweep (not one run's lookup): the exits floor's
# own writer and the analysis stage that adds its columns.
TABLE_WRITERS = {KNOB_HOME, PACKAGE / "analysis" / "operating_point_tables.py"}
# Read the table for what it reports (figures, intervals), never to pick a run's knob.
LOOKUPS = {"operating_points", "load_operating_points", "chosen_knob"}


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def called_names(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name is not None:
                found.append((name, node.lineno))
    return found


def numeric_max_drops(tree: ast.AST) -> list[int]:
    """Lines binding a number to something named max_drop (a constant or a default)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            if any("max_drop" in n.lower() for n in names) and _number(node.value):
                lines.append(node.lineno)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args
            positional = [*args.posonlyargs, *args.args]
            with_default = positional[len(positional) - len(args.defaults) :]
            pairs = list(zip(with_default, args.defaults, strict=True))
            pairs += zip(args.kwonlyargs, args.kw_defaults, strict=True)
            lines += [node.lineno for a, d in pairs if a.arg == "max_drop" and _number(d)]
    return lines


def _number(node) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, int | float)


def run_dir_parsing(path: Path) -> list[int]:
    """Lines that take a run directory apart by hand: `.parts[-k]`, `.parents[k]` for
    k >= 2 (other than of `__file__`), or a `seed<N>` pattern."""
    lines = []
    text = path.read_text()
    source = text.splitlines()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            index = node.slice
            value = index.value if isinstance(index, ast.Constant) else None
            if isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.USub):
                value = -index.operand.value
            if not isinstance(value, int):
                continue
            attr = node.value.attr
            line = source[node.lineno - 1]
            if (attr == "parts" and value < 0) or (
                attr == "parents" and value >= 2 and "__file__" not in line
            ):
                lines.append(node.lineno)
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "seed(\\d" in node.value
        ):
            lines.append(node.lineno)
    return lines


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_only_operating_points_chooses_a_runs_knob(path):
    tree = ast.parse(path.read_text(), str(path))
    if path != KNOB_HOME:
        assert not numeric_max_drops(tree), (
            f"{rel(path)}:{numeric_max_drops(tree)}: a max_drop default of its own; use "
            "exits.operating_points.DEFAULT_MAX_DROP (via knob_for)"
        )
    if path not in TABLE_WRITERS:
        lookups = [(n, line) for n, line in called_names(tree) if n in LOOKUPS]
        assert not lookups, (
            f"{rel(path)}: {lookups}: looks a knob up by hand; call "
            "exits.operating_points.knob_for or point_rows"
        )


@pytest.mark.parametrize("path", SOURCES, ids=rel)
def test_only_the_layout_parses_a_run_directory(path):
    if path != LAYOUT:
        found = run_dir_parsing(path)
        assert not found, (
            f"{rel(path)}:{found}: takes a run directory apart by hand; use "
            "support.layout (parse_run_dir, results_root, data_dir)"
        )


def test_the_guards_catch_a_copy(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text(
        "import re\nDEFAULT_MAX_DROP = 0.01\n"
        "def pick(run, max_drop=0.02):\n"
        "    task = run.parts[-3]\n"
        "    root = run.resolve().parents[2]\n"
        "    seed = re.fullmatch(r'seed(\\d+)', run.name)\n"
        "    return load_operating_points(root)\n"
    )
    tree = ast.parse(copy.read_text())
    assert numeric_max_drops(tree) == [2, 3]
    assert [n for n, _ in called_names(tree) if n in LOOKUPS] == ["load_operating_points"]
    assert run_dir_parsing(copy) == [4, 5, 6]


def test_the_schema_default_of_max_drop_is_the_codes():
    import yaml

    from early_exit.exits.operating_points import DEFAULT_MAX_DROP

    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    default = schema["properties"]["analysis"]["properties"]["max_drop"]["default"]
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert default == DEFAULT_MAX_DROP
    assert config["analysis"].get("max_drop", default) == DEFAULT_MAX_DROP


def policy_name_branches(path: Path, names: set[str]) -> list[int]:
    """Lines comparing something to a policy's name (`x == "oracle"`, `x in ("oracle",)`)."""
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                consts = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                if any(isinstance(c, ast.Constant) and c.value in names for c in consts):
                    lines.append(node.lineno)
    return sorted(set(lines))


READERS = sorted([*(PACKAGE / "analysis").glob("*.py"), *(PACKAGE / "slides").glob("*.py")])


@pytest.mark.parametrize("path", READERS, ids=rel)
def test_readers_ask_a_policy_for_its_properties_never_its_name(path):
    from early_exit.exits.policies import POLICIES

    found = policy_name_branches(path, set(POLICIES))
    assert not found, (
        f"{rel(path)}:{found}: branches on a policy's name; read the property from its "
        "Policy (exits.policies: bound, calibrated, ...)"
    )


def test_the_name_guard_catches_a_branch(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text("a = p == 'oracle'\nb = c in ('confidence', 'x')\nd = p == 'other'\n")
    assert policy_name_branches(copy, {"oracle", "confidence"}) == [1, 2]


RULE_FILES = sorted((ROOT / "workflow" / "rules").glob("*.smk"))


@pytest.mark.parametrize("path", RULE_FILES, ids=rel)
def test_rule_files_hold_rules_and_import_at_the_top(path):
    """The planning and every function live in common.smk (or the package); a rule file
    that defines one, or imports after its first rule, fails here."""
    import re

    text = path.read_text()
    if path.name != "common.smk":
        defs = re.findall(r"^def (\w+)", text, re.M)
        assert not defs, f"{rel(path)}: defines {defs}; move them to common.smk or the package"
    body = text[text.find("\nrule ") :] if "\nrule " in text else ""
    late = re.findall(r"^(?:import|from) [\w.]+", body, re.M)
    assert not late, f"{rel(path)}: {late} after the first rule; imports go to the top"
