"""Concepts written once (issue 35): "which knob for this run" is decided only by
`exits.operating_points` (`knob_for` / `point_rows`), and a run directory
(results/{task}/{method}/seed{seed}) is parsed back only by `support.layout`.

Read from the source with `ast`, so a second copy fails here however it is spelt. And each
section's settings have their defaults in one typed dataclass, the schema's checked against it.
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
# Load the whole table for what it reports, as the notebooks do: rule deck_slides reads it
# once for the slides (`RunTables.points`); they look no run's knob up in it.
REPORTERS = {PACKAGE / "slides" / "run_tables.py"}


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
        allowed = {"load_operating_points"} if path in REPORTERS else set()
        lookups = [(n, line) for n, line in called_names(tree) if n in LOOKUPS - allowed]
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


# Settings and their defaults (issue 35): each section's defaults are written once, in its
# typed settings; the schema's `default:` values (what Snakemake fills in) must equal them,
# and the schema and the dataclass must name the same keys.
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _schema() -> dict:
    import yaml

    return yaml.safe_load(SCHEMA.read_text())


def schema_properties(schema: dict, node: dict) -> dict[str, dict]:
    """A section's properties, those of its `allOf` references merged in (key by key)."""
    merged: dict[str, dict] = {}
    parts = [schema["$defs"][ref["$ref"].rsplit("/", 1)[1]] for ref in node.get("allOf", [])]
    for part in [*parts, node]:
        for key, spec in part.get("properties", {}).items():
            merged[key] = {**merged.get(key, {}), **spec}
    return merged


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


def default_mismatches(schema: dict, node: dict, cls, planning=(), code_only=()) -> list[str]:
    """Where the schema section `node` and the dataclass `cls` disagree: a key one of them
    lacks (`planning`: the workflow's keys the dataclass does not hold), or a default that
    differs or exists on one side only (`code_only`: a default the schema must not fill in)."""
    import dataclasses

    props = schema_properties(schema, node)
    fields = {f.name.removesuffix("_"): f for f in dataclasses.fields(cls) if f.name != "given"}
    problems = [f"{k}: in the schema only" for k in props if k not in fields and k not in planning]
    problems += [f"{k}: in {cls.__name__} only" for k in fields if k not in props]
    for key, f in fields.items():
        if key not in props:
            continue
        has = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if dataclasses.is_dataclass(f.default_factory):
            continue  # a nested section: checked on its own
        if "default" in props[key]:
            if not has or _plain(f.default) != props[key]["default"]:
                code = _plain(f.default) if has else "none"
                problems.append(f"{key}: schema default {props[key]['default']!r}, code {code!r}")
        elif has and key not in code_only:
            problems.append(f"{key}: default {_plain(f.default)!r} in the code, none in the schema")
    return problems


def test_the_schemas_defaults_are_the_typed_settings():
    from early_exit.decoder import settings as decoder
    from early_exit.exits.splitee import SplitEESettings
    from early_exit.inference.latency import LatencySettings
    from early_exit.inference.whole_split import WholeSplitSettings
    from early_exit.serving.under_load import ServingSettings
    from early_exit.training.settings import TrainingSettings

    schema = _schema()
    props = schema["properties"]
    # schedule: the recipe's paper default (Sledgehammer: constant) must win over a global one
    checks = {
        "training": default_mismatches(
            schema, props["training"], TrainingSettings, code_only={"schedule"}
        ),
        "latency": default_mismatches(schema, props["latency"], LatencySettings),
        "latency.whole_split": default_mismatches(
            schema, props["latency"]["properties"]["whole_split"], WholeSplitSettings
        ),
        "serving": default_mismatches(schema, props["serving"], ServingSettings, planning={"task"}),
        "splitee": default_mismatches(
            schema, props["splitee"], SplitEESettings, planning={"pairs", "methods"}
        ),
        "decoder": default_mismatches(
            schema, props["decoder"], decoder.DecoderSettings, planning={"enabled"}
        ),
    }
    for key, cls in [
        ("exits", decoder.ExitTraining),
        ("sweep", decoder.Sweep),
        ("benchmark", decoder.Benchmark),
        ("bootstrap", decoder.Bootstrap),
    ]:
        node = props["decoder"]["properties"][key]
        checks[f"decoder.{key}"] = default_mismatches(schema, node, cls)
    assert not {k: v for k, v in checks.items() if v}


def test_the_settings_guard_catches_a_second_default():
    from dataclasses import dataclass

    @dataclass
    class Copy:
        a: int = 1
        b: int = 2
        c: int = 3

    node = {"properties": {"a": {"default": 1}, "b": {"default": 5}, "c": {}, "d": {}}}
    assert default_mismatches({}, node, Copy) == [
        "d: in the schema only",
        "b: schema default 5, code 2",
        "c: default 3 in the code, none in the schema",
    ]


def test_the_schemas_head_kinds_are_the_models():
    from early_exit.modeling.model import HEADS

    method = _schema()["properties"]["methods"]["additionalProperties"]["properties"]
    assert method["head"]["enum"] == list(HEADS)
