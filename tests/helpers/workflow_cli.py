"""Run this repository's Snakemake workflow in a scratch directory, offline, as a subprocess."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_workflow(
    workdir: Path, configfile: Path, *args: str, cores: int = 1, timeout: int = 300
) -> subprocess.CompletedProcess:
    """`snakemake -s <repo>/Snakefile --directory WORKDIR ARGS --configfile CONFIGFILE`."""
    command = [
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
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
