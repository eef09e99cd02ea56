"""The power goes off: the smoke workflow killed with SIGKILL mid-job, rerun, same results.

One run is killed three times (during a training, during a sweep, during the deck build),
each time with every process of the workflow at once, as a power cut would; after each
kill `--unlock` and a rerun with `--rerun-incomplete` that is killed at the next point;
the last rerun finishes. Every file it leaves under data/ and results/ is then compared
byte for byte with the uninterrupted run (`workdir`, tests/e2e/conftest.py).
"""

import fnmatch
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from workflow_cli import OFFLINE, SMOKE, smoke, workflow_command

pytestmark = pytest.mark.e2e

KILLS = (  # (where, a file that appears when that job starts)
    ("during a training", "results/logs/train/*/*/*.log"),
    ("during a sweep", "results/logs/sweep/*/*/*.log"),
    ("during the deck build", "results/logs/deck.log"),
)
# Files that differ between any two runs, killed or not, and why.
MEASURED = {
    "results/logs/*": "job logs: times, process ids",
    "*.snakemake_timestamp": "Snakemake's directory timestamps",
    "results/*/latency.tsv": "measured times",
    "results/analysis/latency.*": "the latency notebook's figure and table of measured times",
    "results/analysis/measured_speedup.tsv": "measured times over the whole test split",
    "results/analysis/results_*.md": "the results tables: the measured speed-up column",
    "results/*/serving.tsv": "measured throughput and latency",
    "results/analysis/serving.*": "the serving notebook's figure and table of measured times",
    "*.ipynb": "executed notebooks record their execution times",
    "*.html": "notebooks exported with their execution times",
    "results/slides/*": "the deck: its latency slides and the PDF's creation date",
    "results/analysis/setup.md": "the setup slide: the machine's load and the run's times",
}


def kill_when(path: Path, pattern: str, where: str, log: Path, timeout: float = 900) -> None:
    """Run the workflow in `path` and SIGKILL all of it once a new `pattern` file appears."""
    before = set(path.glob(pattern))
    command = workflow_command(path, SMOKE, "--rerun-incomplete", cores=2)
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, env=OFFLINE, stdout=out, stderr=out, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        try:
            while not set(path.glob(pattern)) - before:
                assert proc.poll() is None, f"the workflow ended before {where}: {log}"
                assert time.monotonic() < deadline, f"no job {where} within {timeout} s"
                time.sleep(0.5)
            time.sleep(2)  # well inside the job
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _without_time(data: bytes) -> object:
    meta = json.loads(data)
    meta["progress"].pop("seconds")
    return meta


def _without_exit_config(data: bytes) -> object:
    listed = json.loads(data)
    listed["sha256"].pop("exit_config.json")
    return listed


# Files compared but for one measured value, and why.
PARTLY_MEASURED = {
    "results/*/model/exit_config.json": (_without_time, "progress.seconds: training's wall time"),
    "results/*/model/checksums.json": (_without_exit_config, "exit_config.json's digest"),
}


def files(root: Path) -> dict[str, object]:
    """Every file under data/ and results/ but the MEASURED ones, as bytes (or, for the
    PARTLY_MEASURED ones, as their content without the measured value)."""
    out = {}
    for base in ("data", "results"):
        for file in (root / base).rglob("*"):
            name = file.relative_to(root).as_posix()
            if file.is_file() and not any(fnmatch.fnmatch(name, p) for p in MEASURED):
                out[name] = file.read_bytes()
                for pattern, (compared, _) in PARTLY_MEASURED.items():
                    if fnmatch.fnmatch(name, pattern):
                        out[name] = compared(out[name])
    return out


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    path = tmp_path_factory.mktemp("killed")
    logs = tmp_path_factory.mktemp("killed-logs")
    for i, (where, pattern) in enumerate(KILLS):
        kill_when(path, pattern, where, logs / f"run{i}.log")
        unlock = smoke(path, "--unlock")
        assert unlock.returncode == 0, unlock.stderr[-3000:]
    final = smoke(path, "--rerun-incomplete")
    assert final.returncode == 0, final.stderr[-5000:]
    return path


def test_killed_three_times_then_rerun_gives_the_same_results(killed, workdir):
    want, got = files(workdir), files(killed)
    assert sorted(set(got) - set(want)) == []  # nothing left behind: no partial, no temp file
    assert sorted(set(want) - set(got)) == []
    differ = sorted(name for name in want if want[name] != got[name])
    assert differ == [], f"{len(differ)} of {len(want)} files differ"
    assert len(want) > 150  # models, stored outputs, sweeps, tables, figures, data (207 here)


def test_nothing_is_left_to_do_after_the_rerun(killed):
    dry = smoke(killed, "--dry-run")
    assert dry.returncode == 0 and "Nothing to be done" in dry.stdout + dry.stderr
