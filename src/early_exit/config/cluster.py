"""Check what the workflow's jobs ask of a SLURM cluster before any is submitted.

SLURM answers an impossible request badly: an unknown partition is an "invalid partition
specified" buried in a long sbatch command line (once per retry); a GPU on a cluster
without GPUs is "Invalid generic resource (gres) specification"; and a job asking for more
CPUs than any node of its partition has is *accepted* and then stays pending forever
(reason `PartitionConfig`), so Snakemake waits forever. This module compares each job's
partition, CPUs, memory and GPUs with the nodes `sinfo` reports and names the rule, the
request and the fix in one message. The workflow runs it when it starts on SLURM
(`onstart:` in workflow/rules/common.smk), after the DAG is built, before any job runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from early_exit.support.errors import EarlyExitError

# one line per node and partition: "batch*|2|24105|gpu:a100:4(S:0-1),shard:8"
SINFO_COMMAND = ("sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%G")
PROFILE_HINT = "profiles/slurm/config.yaml"


class ClusterError(EarlyExitError):
    """The jobs cannot run on this SLURM cluster as requested; the message says what to change."""


@dataclass(frozen=True)
class Partition:
    """What the biggest node of a partition offers (each resource maximised separately)."""

    name: str
    default: bool = False
    cpus: int = 0
    mem_mb: int = 0
    gpus: int = 0
    gpu_models: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Request:
    """What one job asks of SLURM; `partition=None` means the cluster's default."""

    rule: str
    partition: str | None = None
    cpus: int = 1
    mem_mb: int | None = None
    gpus: int = 0
    gpu_model: str | None = None


def _leading_int(text: str) -> int:
    match = re.match(r"\d+", text.strip())
    return int(match.group()) if match else 0


def parse_gres(gres: str) -> tuple[int, set[str]]:
    """GPU count and models in a node's `%G`, e.g. `gpu:a100:4(S:0-1),shard:8` -> (4, {a100})."""
    count, models = 0, set()
    for item in gres.split(","):
        parts = re.sub(r"\(.*?\)", "", item).strip().split(":")
        if parts[0] != "gpu":
            continue
        count += _leading_int(parts[-1]) if len(parts) > 1 and parts[-1][:1].isdigit() else 1
        if len(parts) == 3 or (len(parts) == 2 and not parts[1][:1].isdigit()):
            models.add(parts[1])
    return count, models


def parse_sinfo(text: str) -> dict[str, Partition]:
    """Partitions from `sinfo --noheader --Node --format=%P|%c|%m|%G` output."""
    found: dict[str, Partition] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, cpus, mem, gres = (line.split("|") + ["", "", ""])[:4]
        default = name.endswith("*")
        name = name.strip().rstrip("*")
        gpus, models = parse_gres(gres)
        old = found.get(name, Partition(name))
        found[name] = Partition(
            name,
            default=old.default or default,
            cpus=max(old.cpus, _leading_int(cpus)),
            mem_mb=max(old.mem_mb, _leading_int(mem)),
            gpus=max(old.gpus, gpus),
            gpu_models=old.gpu_models | models,
        )
    return found


def query_partitions(timeout: float = 30) -> dict[str, Partition]:
    """Ask `sinfo` for the cluster's partitions and nodes."""
    if shutil.which(SINFO_COMMAND[0]) is None:
        raise ClusterError("`sinfo` not found: run the workflow on a SLURM login node")
    try:
        out = subprocess.run(
            SINFO_COMMAND, capture_output=True, text=True, timeout=timeout, check=True
        ).stdout
    except subprocess.TimeoutExpired:
        raise ClusterError(f"`sinfo` did not answer within {timeout:.0f} s") from None
    except subprocess.CalledProcessError as err:
        raise ClusterError(f"`sinfo` failed: {err.stderr.strip()}") from None
    partitions = parse_sinfo(out)
    if not partitions:
        raise ClusterError("`sinfo` lists no partitions: is slurmctld up? (`scontrol ping`)")
    return partitions


def _rules(requests: Iterable[Request]) -> str:
    names = sorted({r.rule for r in requests})
    return f"rule{'s' if len(names) > 1 else ''} {', '.join(names)}"


def problems(requests: Iterable[Request], partitions: dict[str, Partition]) -> list[str]:
    """One line per impossible request, saying what to change (empty when all can run)."""
    default = next((p.name for p in partitions.values() if p.default), None)
    listing = ", ".join(f"{p.name}{'*' if p.default else ''}" for p in partitions.values())
    by_partition: dict[str | None, list[Request]] = {}
    for request in requests:
        by_partition.setdefault(request.partition or default, []).append(request)

    found = []
    for name, asked in by_partition.items():
        if name is None:  # no partition given and no default: sbatch decides
            continue
        if name not in partitions:
            found.append(
                f"partition '{name}' ({_rules(asked)}) does not exist; this cluster has:"
                f" {listing} (* = default). Set `slurm_partition` under `default-resources`"
                f" (or per rule under `set-resources`) in {PROFILE_HINT}."
            )
            continue
        part = partitions[name]
        for r in asked:
            if r.cpus > part.cpus:
                found.append(
                    f"rule {r.rule} asks for {r.cpus} CPUs (its threads), but the nodes of"
                    f" partition '{name}' have at most {part.cpus}; SLURM would keep the job"
                    f" pending forever. Lower `set-threads` in {PROFILE_HINT} or run with"
                    f" --max-threads {part.cpus}."
                )
            if r.mem_mb is not None and r.mem_mb > part.mem_mb:
                found.append(
                    f"rule {r.rule} asks for {r.mem_mb} MB of memory, but the nodes of"
                    f" partition '{name}' have at most {part.mem_mb} MB. Lower its `mem_mb`"
                    f" under `set-resources` in {PROFILE_HINT}."
                )
            if r.gpus and not part.gpus:
                gpu_partitions = [p.name for p in partitions.values() if p.gpus]
                where = (
                    f"partitions with GPUs: {', '.join(gpu_partitions)}"
                    if gpu_partitions
                    else "no partition of this cluster has GPUs"
                )
                found.append(
                    f"rule {r.rule} asks for {r.gpus} GPU(s), but partition '{name}' has none"
                    f" ({where}). Give the rule a GPU partition (`slurm_partition` under"
                    " `set-resources`) or run without profiles/slurm-gpu."
                )
            elif r.gpus > part.gpus:
                found.append(
                    f"rule {r.rule} asks for {r.gpus} GPUs, but the nodes of partition"
                    f" '{name}' have at most {part.gpus}."
                )
            if r.gpus and part.gpus and r.gpu_model and r.gpu_model not in part.gpu_models:
                models = ", ".join(sorted(part.gpu_models)) or "none named"
                found.append(
                    f"rule {r.rule} asks for GPU model '{r.gpu_model}', but partition"
                    f" '{name}' has: {models} (`sinfo -o '%P %G'`)."
                )
    return found


def check_requests(requests: Iterable[Request], partitions: dict[str, Partition]) -> None:
    """Raise ClusterError listing every request the cluster cannot satisfy."""
    found = problems(requests, partitions)
    if found:
        lines = "\n".join(f"  - {line}" for line in found)
        raise ClusterError(f"SLURM cannot run these jobs as requested:\n{lines}")


def _int_resource(resources, *names: str) -> int | None:
    for name in names:
        value = resources.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def request_of(job) -> Request:
    """The SLURM request of a Snakemake job, as snakemake-executor-plugin-slurm builds it."""
    res = job.resources
    gpus = _int_resource(res, "gpu", "gpus") or 0
    gpu_model = res.get("gpu_model") or None
    if gpu_model and not gpus:
        gpus = 1  # the plugin submits --gpus=MODEL:1
    cpus = _int_resource(res, "cpus_per_task")
    if cpus is None and gpus:
        per_gpu = _int_resource(res, "cpus_per_gpu")
        cpus = per_gpu * gpus if per_gpu else None
    return Request(
        rule=job.name,
        partition=res.get("slurm_partition") or None,
        cpus=max(1, cpus if cpus is not None else job.threads),
        mem_mb=_int_resource(res, "mem_mb"),
        gpus=gpus,
        gpu_model=gpu_model,
    )


def check_slurm_workflow(workflow) -> None:
    """When Snakemake submits to SLURM, check its jobs against the cluster (else do nothing).

    Meant for `onstart:`, which runs in the submitting Snakemake only, once the jobs and
    their resources (profile's `default-resources`, `set-resources`, `set-threads`,
    `--max-threads` included) are known. Jobs of `localrules` are not submitted.
    """
    plugin = getattr(workflow, "executor_plugin", None)
    if getattr(plugin, "name", None) != "slurm":
        return
    jobs = [job for job in workflow.dag.needrun_jobs() if not job.is_local]
    if jobs:
        check_requests([request_of(job) for job in jobs], query_partitions())
