"""The workflow on a real SLURM cluster: a single-node one started on this machine.

The module fixture starts munge, slurmctld and slurmd with
scripts/slurm/setup_local_cluster.sh (root needed; CI runs as root) and stops them
afterwards, unless they were already running. Four Snakemake runs then go at once, each
bounded by `timeout -k` (a status query that never sees a job finish makes Snakemake
wait forever):

- `slurm`: one run of the smoke workflow (data, training with its prediction, calibration,
  sweep) through profiles/slurm, as the README says, in a temporary directory;
- `local`: the same targets on this machine through profiles/local, the reference;
- `retry`: tests/e2e/slurm/Snakefile through profiles/slurm, a step that fails on its first
  attempt only;
- `bad_partition`: the smoke workflow through a copy of profiles/slurm that names a
  partition this cluster does not have.

Training uses the rule's threads, capped by `--cores` locally and by `--max-threads` on
SLURM (where they also size the allocation): both runs get the same number, so their float
results are bit-identical.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "config" / "smoke.yaml"
PROFILE = REPO / "profiles" / "slurm"
SETUP = REPO / "scripts" / "slurm" / "setup_local_cluster.sh"
TEARDOWN = REPO / "scripts" / "slurm" / "teardown_local_cluster.sh"
CLUSTER_NAME = "early-exit-local"  # ClusterName in the slurm.conf the setup script writes
# One run of the smoke workflow: a SLURM job costs 15-25 s here, mostly Snakemake starting
# twice inside it, so all of it (34 jobs) would take too long; test_workflow.py runs it all
# locally.
METHOD = "pabee"
RUN_DIR = f"results/bbc-headlines/{METHOD}/seed1"
TARGETS = (f"{RUN_DIR}/sweep.tsv",)
THREADS = 1  # training/prediction threads in both runs (they run side by side on 2 cores)
BAD_PARTITION = "no-such-partition"
# Status checks: the plugin waits this long after a submission (and after a check that
# found a job finished), then 10 s longer after each check that found none. 25 s catches
# most jobs here at the first check; a slower machine only makes the test slower.
FIRST_CHECK = "25"

pytestmark = [pytest.mark.e2e, pytest.mark.slurm]


def sh(*args: str, timeout: float = 30) -> str:
    """stdout of a short command ('' when it fails or is missing)."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def slurm_jobs(prefix: str) -> dict[str, str]:
    """SLURM job id -> state of the jobs a run with `--slurm-jobname-prefix prefix` submitted.

    Without accounting, finished jobs are listed by `squeue --states=all` for MinJobAge.
    """
    lines = sh("squeue", "--states=all", "--noheader", "--format=%i %j %T").splitlines()
    return {
        job: state
        for job, name, state in (line.split() for line in lines if line.strip())
        if name.startswith(f"{prefix}_")
    }


def profile_partition() -> str:
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    return profile["default-resources"]["slurm_partition"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A reachable local test cluster with the profile's partition; stops what it started."""
    partition = profile_partition()
    if "UP" in sh("scontrol", "ping", timeout=15):
        name = re.search(r"ClusterName\s*=\s*(\S+)", sh("scontrol", "show", "config"))
        if not name or name.group(1) != CLUSTER_NAME:
            pytest.fail(
                f"a SLURM cluster ({name.group(1) if name else 'unknown'}) answers on this"
                f" machine; tests/e2e/test_slurm.py submits only to the local test cluster"
                f" ({CLUSTER_NAME}) of {SETUP.relative_to(REPO)}. Run it elsewhere or"
                " deselect it: pytest -m 'not e2e'."
            )
        if partition not in sh("sinfo", "--noheader", "--format=%R").split():
            pytest.fail(
                f"the running local test cluster has no partition '{partition}' (the one"
                f" {PROFILE.relative_to(REPO)} asks for); restart it:"
                f" {SETUP.relative_to(REPO)} --partition {partition}"
            )
        yield partition  # somebody else started it: leave it running
        return
    if os.geteuid() != 0:
        pytest.fail(
            "tests/e2e/test_slurm.py needs a SLURM cluster and root to start one here"
            f" (apt-get, daemons). Start it once with `sudo {SETUP.relative_to(REPO)}`"
            " (the test then uses it and leaves it running), run the tests as root as CI"
            " does, or deselect them: pytest -m 'not e2e'."
        )
    log = tmp_path_factory.mktemp("cluster") / "setup.log"
    # to a file, not a pipe: the daemons it starts must not hold our end open
    with log.open("w") as out:
        done = subprocess.run(
            ["timeout", "-k", "10", "600", str(SETUP), "--partition", partition],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        assert done.returncode == 0, f"cluster setup failed:\n{log.read_text()[-3000:]}"
        yield partition
    finally:
        with log.open("a") as out:
            subprocess.run(["timeout", "-k", "10", "120", str(TEARDOWN)], stdout=out, stderr=out)


@dataclass
class Run:
    """A background `snakemake` bounded by `timeout -k`, its output in a file."""

    name: str
    workdir: Path
    prefix: str
    limit: int
    process: subprocess.Popen | None = None
    started: float = 0.0
    seconds: float = 0.0
    returncode: int | None = None

    @property
    def log(self) -> Path:
        return self.workdir.parent / f"{self.name}.log"

    def start(self, *args: str) -> Run:
        command = ["timeout", "-k", "20", str(self.limit), sys.executable, "-m", "snakemake"]
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                [*command, *args, "--directory", str(self.workdir)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
            )
        self.started = time.monotonic()
        return self

    def poll(self) -> int | None:
        """The exit status once the run has ended (None before); records its duration."""
        if self.returncode is None and self.process.poll() is not None:
            self.returncode = self.process.returncode
            self.seconds = time.monotonic() - self.started
        return self.returncode

    @property
    def output(self) -> str:
        return self.log.read_text()

    def tail(self, chars: int = 4000) -> str:
        status = f"{self.name}: exit {self.returncode} after {self.seconds:.0f} s"
        return f"{status}\n{self.output[-chars:]}"


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """Start the four runs together (they mostly wait on SLURM) and wait for all of them."""
    assert METHOD in yaml.safe_load(SMOKE.read_text())["methods"], f"{METHOD} left {SMOKE}"
    root = tmp_path_factory.mktemp("slurm-runs")
    tag = f"ee{uuid.uuid4().hex[:8]}"

    def new(name: str, limit: int) -> Run:
        (root / name).mkdir()
        return Run(name, root / name, f"{tag}-{name}", limit)

    bad_profile = root / "bad-profile"
    bad_profile.mkdir()
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    profile["default-resources"]["slurm_partition"] = BAD_PARTITION
    (bad_profile / "config.yaml").write_text(yaml.safe_dump(profile))

    smoke = ("-s", str(REPO / "Snakefile"), "--configfile", str(SMOKE))

    def on_slurm(run: Run, profile_dir: Path, first_check: str = FIRST_CHECK) -> tuple:
        return (
            "--profile",
            str(profile_dir),
            "--slurm-jobname-prefix",
            run.prefix,
            "--slurm-init-seconds-before-status-checks",
            first_check,
            "--slurm-keep-successful-logs",
            "--max-threads",
            str(THREADS),
        )

    slurm, local, retry, bad = (
        new(name, limit)
        for name, limit in (("slurm", 480), ("local", 420), ("retry", 240), ("bad_partition", 150))
    )
    started = {run.name: run for run in (slurm, local, retry, bad)}
    try:
        slurm.start(*smoke, *on_slurm(slurm, PROFILE), *TARGETS)
        local.start(
            *smoke, "--profile", str(REPO / "profiles/local"), "--cores", str(THREADS), *TARGETS
        )
        retry.start("-s", str(REPO / "tests/e2e/slurm/Snakefile"), *on_slurm(retry, PROFILE, "5"))
        bad.start(*smoke, *on_slurm(bad, bad_profile, "5"))
        while None in [run.poll() for run in started.values()]:  # poll each, every time
            time.sleep(0.5)
        jobs = sh("squeue", "--states=all", "--noheader", "--format=%i %j %T %C %M")
        print(
            *(f"{r.name}: exit {r.returncode} after {r.seconds:.0f} s" for r in started.values()),
            *(line for line in jobs.splitlines() if tag in line),
            sep="\n",
        )
        yield started
    finally:
        for run in started.values():  # a run killed by its timeout leaves its jobs queued
            if run.process is not None and run.process.poll() is None:
                run.process.terminate()  # `timeout` passes it on to Snakemake
                try:
                    run.process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    run.process.kill()
            leftover = [j for j, s in slurm_jobs(run.prefix).items() if s in ("PENDING", "RUNNING")]
            if leftover:
                sh("scancel", *leftover)


def rule_headers(output: str) -> list[tuple[str, str]]:
    """(kind, rule) of every job Snakemake started: kind 'rule' (submitted) or 'localrule'."""
    return re.findall(r"^(rule|localrule) (\w+):$", output, flags=re.MULTILINE)


def submissions(output: str) -> dict[str, str]:
    """SLURM job id -> rule, from the plugin's 'has been submitted' lines."""
    found = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_(\w+?)/", output)
    return {job: rule for job, rule in found}


def job_threads(output: str, rule: str) -> set[int]:
    """The threads of the jobs of `rule`, from Snakemake's job headers (omitted when 1)."""
    blocks = re.findall(rf"^(?:local)?rule {rule}:\n((?:    .*\n)+)", output, flags=re.MULTILINE)
    return {int((re.findall(r"^    threads: (\d+)$", b, re.M) or [1])[0]) for b in blocks}


def test_every_cluster_job_ran_on_slurm_and_completed(runs):
    run = runs["slurm"]
    assert run.returncode == 0, run.tail()
    started = rule_headers(run.output)
    submitted_rules = sorted(rule for kind, rule in started if kind == "rule")
    submitted = submissions(run.output)
    # every job not marked local was submitted to SLURM, once
    assert sorted(submitted.values()) == submitted_rules, run.tail()
    assert "train" in submitted_rules, "training (and its prediction) must use SLURM"
    # ... and SLURM ran all of them to the end, under this run's job name
    states = slurm_jobs(run.prefix)
    assert set(states) == set(submitted), (states, submitted)
    assert set(states.values()) == {"COMPLETED"}, states
    # the allocation of the training job had the threads the job used
    train_job = next(job for job, rule in submitted.items() if rule == "train")
    cpus = sh("squeue", "--states=all", "--noheader", "--jobs", train_job, "--format=%C").strip()
    assert cpus == str(THREADS)
    assert (run.workdir / RUN_DIR / "sweep.tsv").is_file()


def test_slurm_results_equal_a_local_run(runs):
    slurm, local = runs["slurm"], runs["local"]
    assert slurm.returncode == 0, slurm.tail()
    assert local.returncode == 0, local.tail()
    # the same number of torch threads, or float reductions (and results) differ
    assert job_threads(slurm.output, "train") == job_threads(local.output, "train") == {THREADS}
    with (
        np.load(slurm.workdir / RUN_DIR / "exit_logits.npz") as on_slurm,
        np.load(local.workdir / RUN_DIR / "exit_logits.npz") as here,
    ):
        assert sorted(on_slurm.files) == sorted(here.files)
        for key in here.files:
            np.testing.assert_array_equal(on_slurm[key], here[key], err_msg=key)
    pd.testing.assert_frame_equal(
        pd.read_csv(slurm.workdir / RUN_DIR / "sweep.tsv", sep="\t"),
        pd.read_csv(local.workdir / RUN_DIR / "sweep.tsv", sep="\t"),
        check_exact=True,
    )


def test_a_failed_job_is_resubmitted_and_succeeds(runs):
    run = runs["retry"]
    assert run.returncode == 0, run.tail()
    attempts = [line.split() for line in (run.workdir / "attempts.txt").read_text().splitlines()]
    assert [attempt for attempt, _ in attempts] == ["1", "2"], attempts
    first, second = (job for _, job in attempts)
    assert slurm_jobs(run.prefix) == {first: "FAILED", second: "COMPLETED"}
    assert (run.workdir / "flaky.txt").read_text() == "done\n"


def test_an_unknown_partition_fails_early_and_says_which(runs):
    run = runs["bad_partition"]
    assert run.returncode not in (0, 124, 137), run.tail()  # failed, and not by the timeout
    assert run.seconds < 120, run.tail()
    assert BAD_PARTITION in run.output and "partition" in run.output, run.tail()
    assert slurm_jobs(run.prefix) == {}  # nothing reached the queue
    assert not (run.workdir / RUN_DIR / "model").exists()


def test_the_gpu_profile_only_adds_gpus_to_the_slurm_profile():
    base = yaml.safe_load((PROFILE / "config.yaml").read_text())["set-resources"]
    gpu = yaml.safe_load((REPO / "profiles/slurm-gpu/config.yaml").read_text())["set-resources"]
    # a later --profile replaces the whole key: the GPU one must repeat the rest
    assert set(gpu) == set(base)
    for rule, resources in gpu.items():
        gpu_keys = {key for key in resources if key.startswith(("gpu", "cpus_per_gpu"))}
        assert gpu_keys, f"{rule} asks for no GPU"
        assert {k: v for k, v in resources.items() if k not in gpu_keys} == base[rule]
