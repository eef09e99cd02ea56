"""`early-exit predict` as a user runs it: answers on stdout, bad input named, exit status 2."""

import io
import json
import shutil
import subprocess
import sys

import pytest

from early_exit.cli import main
from early_exit.inference.engine import EarlyExitEngine


def run_cli(capsys, monkeypatch, argv, stdin: bytes = b""):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


@pytest.fixture
def joint(runs):
    return runs["joint"][0]


def edited_copy(run, tmp_path, edit):
    """A copy of `run` whose exit_config.json is changed by `edit(meta)`, without
    checksums as a model directory of an older version."""
    copy = tmp_path / "results" / "cls" / "edited" / "seed0"
    shutil.copytree(run, copy)
    (copy / "model" / "checksums.json").unlink()
    path = copy / "model" / "exit_config.json"
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))
    return copy


def test_lines_from_stdin_give_one_answer_per_line(capsys, monkeypatch, joint):
    stdin = b"market shares bank\n\nfilm music star award\n"
    argv = ["predict", str(joint), "--policy", "entropy", "--threshold", "0.3"]
    code, answers, err = run_cli(capsys, monkeypatch, argv, stdin)
    assert code == 0
    assert [a["line"] for a in answers] == [1, 3]
    assert "skipped 1 empty line(s): 2" in err
    engine = EarlyExitEngine.from_run(joint, device="cpu")
    expected = engine.classify(["market shares bank", "film music star award"], "entropy", 0.3)
    for got, want in zip(answers, expected, strict=True):
        assert {k: got[k] for k in ("label", "label_name", "exit_layer")} == {
            "label": want.label,
            "label_name": want.label_name,
            "exit_layer": want.exit_layer,
        }


def test_threshold_auto_uses_the_knob_chosen_on_dev(capsys, monkeypatch, joint, tmp_path):
    from early_exit.exits.operating_points import load_sweeps, operating_points
    from early_exit.exits.sweep import sweep_file

    sweep = joint / "sweep.tsv"
    policies = {"entropy": {"num_thresholds": 11}}
    labels = {"task": "cls", "method": "joint", "seed": 0}
    sweep_file(joint / "exit_logits.npz", sweep, policies, None, labels, joint / "calibration.json")
    points = operating_points(load_sweeps([sweep]), 0.01)
    engine = EarlyExitEngine.from_run(joint, device="cpu")
    assert engine.operating_point("entropy") == points.threshold.iloc[0]
    data = tmp_path / "in.jsonl"
    data.write_text('{"text": "market shares"}\n{"text": "goal match team"}\n')
    argv = ["predict", str(joint), str(data), "--threshold", "auto"]
    code, answers, _ = run_cli(capsys, monkeypatch, argv)
    assert code == 0 and len(answers) == 2
    # the workflow's operating_points.tsv (results/analysis/), when present, is what it chose
    workflow_points = joint.parents[2] / "analysis" / "operating_points.tsv"
    workflow_points.parent.mkdir(parents=True, exist_ok=True)
    other = points.assign(threshold=0.123)
    other.to_csv(workflow_points, sep="\t", index=False)
    try:
        assert engine.operating_point("entropy") == 0.123
        assert engine.operating_point("entropy", max_drop=0.01) == points.threshold.iloc[0]
    finally:
        workflow_points.unlink()
    sweep.unlink()
    code, _, err = run_cli(capsys, monkeypatch, argv)
    assert code == 2 and "no sweep table" in err


def test_tsv_input_and_output_file(capsys, monkeypatch, joint, tmp_path):
    data = tmp_path / "in.tsv"
    data.write_text("id\ttext\n1\tmarket shares\n2\t" + "film star " * 20 + "\n")
    out = tmp_path / "out.jsonl"
    argv = ["predict", str(joint), str(data), "--threshold", "0.5", "--output", str(out)]
    code, _, err = run_cli(capsys, monkeypatch, argv)
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and [a["line"] for a in answers] == [2, 3]
    assert [a["truncated"] for a in answers] == [False, True]
    assert "1 truncated to 12 tokens" in err


@pytest.mark.parametrize(
    "argv,stdin,message",
    [
        (["--policy", "nope", "--threshold", "1"], b"x\n", "unknown runtime policy 'nope'"),
        (["--policy", "oracle", "--threshold", "1"], b"x\n", "not a runtime policy"),
        (["--threshold", "1"], b"good\n\xff\xfebad\n", "<stdin>:2: not UTF-8"),
        (["--threshold", "1", "--format", "jsonl"], b'{"text": 1}\n', "<stdin>:1: expected"),
    ],
)
def test_bad_input_is_named_without_a_traceback(capsys, monkeypatch, joint, argv, stdin, message):
    code, answers, err = run_cli(capsys, monkeypatch, ["predict", str(joint), *argv], stdin)
    assert code == 2 and answers == []
    assert message in err and "Traceback" not in err


def test_not_a_run_and_older_formats_are_named(capsys, monkeypatch, joint, tmp_path):
    code, _, err = run_cli(capsys, monkeypatch, ["predict", str(tmp_path), "--threshold", "1"])
    assert code == 2 and "not a trained run" in err
    old = edited_copy(joint, tmp_path, lambda meta: meta.pop("max_length"))
    code, _, err = run_cli(capsys, monkeypatch, ["predict", str(old), "--threshold", "1"])
    assert code == 2 and "older format" in err and "max_length" in err


def test_pair_task_given_single_texts(capsys, monkeypatch, joint, tmp_path):
    pair = edited_copy(joint, tmp_path, lambda meta: meta.update(text_fields=["text", "text_pair"]))
    argv = ["predict", str(pair), "--threshold", "1"]
    code, _, err = run_cli(capsys, monkeypatch, argv, b"market shares\n")
    assert code == 2 and "<stdin>:1: this run classifies pairs" in err
    jsonl = b'{"text": "market shares", "text_pair": "bank profit"}\n'
    code, answers, _ = run_cli(capsys, monkeypatch, [*argv, "--format", "jsonl"], jsonl)
    assert code == 0 and len(answers) == 1


def test_the_module_runs_as_a_command(joint):
    """The console script's entry point, in a fresh process, reading stdin."""
    result = subprocess.run(
        [sys.executable, "-m", "early_exit.cli", "predict", str(joint)]
        + ["--threshold", "0.2", "--device", "cpu"],
        input=b"market shares\n",
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["line"] == 1
