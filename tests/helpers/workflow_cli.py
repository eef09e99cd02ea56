"""Run this repository's Snakemake workflow in a scratch directory, offline, as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "config" / "smoke.yaml"  # the end-to-end tests' configuration


def workflow_command(workdir: Path, configfile: Path, *args: str, cores: int = 1) -> list[str]:
    """`snakemake -s <repo>/Snakefile --directory WORKDIR ARGS --configfile CONFIGFILE`."""
    return [
        sys.executable,
        "-m",
        "snakemake",
        "--cores",
        str(cores),
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
        "--configfile",
        str(configfile),
    ]


OFFLINE = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def run_workflow(
    workdir: Path, configfile: Path, *args: str, cores: int = 1, timeout: int = 300
) -> subprocess.CompletedProcess:
    """Run the workflow (`workflow_command`) to its end, offline."""
    command = workflow_command(workdir, configfile, *args, cores=cores)
    return subprocess.run(command, capture_output=True, text=True, env=OFFLINE, timeout=timeout)


def smoke(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The smoke workflow (config/smoke.yaml) in `workdir` on 2 cores."""
    return run_workflow(workdir, SMOKE, *args, cores=2, timeout=1200)
