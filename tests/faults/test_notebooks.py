"""A notebook job (papermill, through early_exit.analysis.notebook as the analysis rules run
it) that reads a broken table ends its log with the one-line error and exit status 2; a
bug in a cell keeps papermill's traceback."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from faults import FAULTS, RUN

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("papermill")


def run_notebook(tmp_path, name, parameters):
    source = tmp_path / f"{name}.source.ipynb"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    subprocess.run(
        [sys.executable, "-m", "jupytext", "--to", "ipynb", "--output", str(source)]
        + [str(REPO / "notebooks" / f"{name}.py")],
        check=True,
        capture_output=True,
        env=env,
    )
    options = [arg for key, value in parameters.items() for arg in ("-p", key, value)]
    done = subprocess.run(
        [sys.executable, "-m", "early_exit.analysis.notebook", str(source)]
        + [str(tmp_path / f"{name}.partial.ipynb"), "-k", "python3", *options]
        + ["-p", "out_dir", str(tmp_path / "analysis")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    return done.returncode, (done.stdout + done.stderr).strip().splitlines()[-1]


def test_a_broken_latency_table_ends_the_latency_notebook_with_one_line(results, tmp_path):
    table = results / RUN / "latency.tsv"
    FAULTS["garbage"](table)
    code, last = run_notebook(tmp_path, "latency", {"tables": str(table), "methods": "{}"})
    assert code == 2
    assert last.startswith("error: ") and "latency.tsv" in last and "rule latency" in last
    assert not (tmp_path / "analysis" / "latency.png").exists()


def test_a_bug_in_a_notebook_keeps_its_traceback(tmp_path):
    code, last = run_notebook(tmp_path, "latency", {"tables": "", "methods": json.dumps([1])})
    assert code == 1 and not last.startswith("error: ")
