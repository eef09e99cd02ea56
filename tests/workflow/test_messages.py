"""Messages that tell the user what to rerun name rules the workflow really has."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULE = re.compile(r"\brules? ([a-z_]+)((?:(?:, | and | or | \(or )[a-z_]+)*)")
# The stages of old versions that live inside other rules now (predict in train and
# slenderize, calibrate in sweep): a message naming them sends the user nowhere.
GONE = re.compile(r"\brerun (?:the )?(predict|calibrate|train stage|data stage|sweep stage)\b")


def workflow_rules() -> set[str]:
    files = [*(REPO / "workflow" / "rules").glob("*.smk"), REPO / "Snakefile"]
    text = "\n".join(p.read_text() for p in files)
    return set(re.findall(r"^rule (\w+):", text, re.M))


# A string that is only a rule's name, as `read_table(path, what, "rule sweep")` takes it
NAMES_A_RULE = re.compile(r"^\(?rules? [a-z_]+")


def message_strings() -> list[tuple[str, str]]:
    """(where, text) of every string literal in the package, the notebooks and the
    workflow scripts that tells the user to rerun something or names a rule (f-strings
    by their parts)."""
    found = []
    sources = [*(REPO / "src" / "early_exit").rglob("*.py"), *(REPO / "notebooks").glob("*.py")]
    for path in sorted(sources + list((REPO / "workflow" / "scripts").glob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            if "rerun" in node.value or NAMES_A_RULE.match(node.value):
                found.append((f"{path.relative_to(REPO)}:{node.lineno}", node.value))
    return found


def named_rules(text: str) -> list[str]:
    names = []
    for match in RULE.finditer(text):
        names.append(match.group(1))
        names += re.findall(r"[a-z_]+", re.sub(r", | and | or | \(or ", " ", match.group(2)))
    return names


def test_every_rule_a_message_names_exists():
    rules = workflow_rules()
    assert {"train", "sweep", "slenderize", "prepare_data", "operating_points"} <= rules
    wrong = [
        f"{where}: rule {name!r} in {text!r}"
        for where, text in message_strings()
        for name in named_rules(text)
        if name not in rules
    ]
    assert wrong == []


def test_no_message_names_a_stage_that_is_gone():
    stale = [f"{where}: {text!r}" for where, text in message_strings() if GONE.search(text)]
    assert stale == []


def test_the_check_sees_the_rules_tables_are_read_with():
    texts = [text for _, text in message_strings()]
    assert {"rule sweep", "rule latency", "rule splitee", "rule operating_points"} <= set(texts)


def test_the_check_reads_rule_lists():
    assert named_rules("rerun rule train (or slenderize) and sweep") == ["train", "slenderize"]
    assert named_rules("rerun rules train and sweep") == ["train", "sweep"]
