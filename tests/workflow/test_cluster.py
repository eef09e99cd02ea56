"""Checks of SLURM requests against the cluster, on canned `sinfo` output (no cluster needed)."""

import subprocess
from types import SimpleNamespace

import pytest

from early_exit.config import cluster
from early_exit.config.cluster import (
    ClusterError,
    Partition,
    Request,
    check_requests,
    check_slurm_workflow,
    parse_gres,
    parse_sinfo,
    problems,
    request_of,
)

# `sinfo --noheader --Node --format=%P|%c|%m|%G`: one line per node and partition
SINFO = """\
batch*|32|192000|(null)
batch*|64|256000|(null)
gpu|16|128000|gpu:a100:4(S:0-1),shard:8
gpu|16|128000|gpu:v100:2
debug|2|4000|(null)
"""
PARTITIONS = parse_sinfo(SINFO)


def test_sinfo_is_read_per_partition_with_the_biggest_node():
    assert PARTITIONS["batch"] == Partition("batch", default=True, cpus=64, mem_mb=256000)
    gpu = PARTITIONS["gpu"]
    assert (gpu.default, gpu.cpus, gpu.gpus, gpu.gpu_models) == (
        False,
        16,
        4,
        frozenset({"a100", "v100"}),
    )
    assert list(PARTITIONS) == ["batch", "gpu", "debug"]


@pytest.mark.parametrize(
    "gres, expected",
    [
        ("(null)", (0, set())),
        ("gpu:2", (2, set())),
        ("gpu", (1, set())),
        ("gpu:fake:1", (1, {"fake"})),
        ("gpu:a100:4(S:0-1),shard:8", (4, {"a100"})),
        ("gpu:a100:2,gpu:v100:1", (3, {"a100", "v100"})),
        ("shard:8,mps:100", (0, set())),
    ],
)
def test_gpus_are_counted_from_the_gres_column(gres, expected):
    assert parse_gres(gres) == expected


def test_requests_the_cluster_can_run_pass():
    requests = [
        Request("prepare_data"),  # default partition
        Request("train", "gpu", cpus=8, mem_mb=64000, gpus=4, gpu_model="a100"),
        Request("sweep", "debug", cpus=2, mem_mb=2000),
    ]
    assert problems(requests, PARTITIONS) == []
    check_requests(requests, PARTITIONS)


def test_an_unknown_partition_is_named_once_with_its_rules_and_the_choices():
    found = problems([Request("train", "long"), Request("predict", "long")], PARTITIONS)
    assert len(found) == 1
    assert "partition 'long' (rules predict, train) does not exist" in found[0]
    assert "batch*, gpu, debug" in found[0] and "slurm_partition" in found[0]


def test_more_cpus_than_any_node_has_would_pend_forever_and_is_refused():
    (message,) = problems([Request("train", "debug", cpus=8)], PARTITIONS)
    assert "rule train asks for 8 CPUs" in message and "at most 2" in message
    assert "--max-threads 2" in message


def test_too_much_memory_is_refused():
    (message,) = problems([Request("train", None, mem_mb=300000)], PARTITIONS)
    assert "300000 MB" in message and "'batch'" in message and "256000 MB" in message


def test_a_gpu_on_a_partition_without_gpus_points_to_the_gpu_partitions():
    (message,) = problems([Request("train", "batch", gpus=1)], PARTITIONS)
    assert "has none" in message and "partitions with GPUs: gpu" in message


def test_a_gpu_on_a_cluster_without_gpus_says_so():
    partitions = parse_sinfo("batch*|2|24105|(null)\n")
    (message,) = problems([Request("train", gpus=1)], partitions)
    assert "no partition of this cluster has GPUs" in message


def test_too_many_gpus_and_an_unknown_model_are_refused():
    found = problems([Request("train", "gpu", gpus=8, gpu_model="h100")], PARTITIONS)
    assert any("at most 4" in line for line in found)
    assert any("'h100'" in line and "a100, v100" in line for line in found)


def test_without_a_default_partition_an_unnamed_one_is_left_to_sbatch():
    partitions = parse_sinfo("a|2|1000|(null)\nb|2|1000|(null)\n")
    assert problems([Request("train", cpus=64)], partitions) == []


def test_check_requests_lists_every_problem():
    with pytest.raises(ClusterError) as err:
        check_requests([Request("train", "nope"), Request("sweep", "debug", cpus=4)], PARTITIONS)
    text = str(err.value)
    assert text.startswith("SLURM cannot run these jobs as requested:")
    assert text.count("\n  - ") == 2


def job(name, threads=1, local=False, **resources):
    return SimpleNamespace(name=name, threads=threads, is_local=local, resources=resources)


def test_a_job_request_follows_the_slurm_plugin():
    assert request_of(job("train", threads=8, slurm_partition="gpu", mem_mb=8000)) == Request(
        "train", "gpu", cpus=8, mem_mb=8000
    )
    # the plugin submits --cpus-per-task=cpus_per_task, or --cpus-per-gpu for GPU jobs
    assert request_of(job("t", threads=8, cpus_per_task=2)).cpus == 2
    assert request_of(job("t", threads=8, gpu=2, cpus_per_gpu=4)).cpus == 8
    assert request_of(job("t", gpu_model="a100")) == Request("t", gpus=1, gpu_model="a100")
    # unevaluated resources (Snakemake's <TBD>) are not checked
    assert request_of(job("t", mem_mb="<TBD>")).mem_mb is None


def workflow(executor, jobs):
    return SimpleNamespace(
        executor_plugin=SimpleNamespace(name=executor),
        dag=SimpleNamespace(needrun_jobs=lambda: jobs),
    )


def test_the_workflow_check_runs_only_for_slurm_and_skips_local_jobs(monkeypatch):
    def no_sinfo():
        raise AssertionError("sinfo must not be asked")

    monkeypatch.setattr(cluster, "query_partitions", no_sinfo)
    check_slurm_workflow(workflow("local", [job("train", threads=64)]))
    check_slurm_workflow(workflow("slurm", [job("deck", local=True)]))

    monkeypatch.setattr(cluster, "query_partitions", lambda: PARTITIONS)
    with pytest.raises(ClusterError, match="rule train asks for 128 CPUs"):
        check_slurm_workflow(workflow("slurm", [job("train", threads=128), job("all", local=True)]))


def test_sinfo_failures_are_reported_plainly(monkeypatch):
    monkeypatch.setattr(cluster.shutil, "which", lambda name: None)
    with pytest.raises(ClusterError, match="`sinfo` not found"):
        cluster.query_partitions()

    monkeypatch.setattr(cluster.shutil, "which", lambda name: "/usr/bin/sinfo")

    def fails(*args, **kwargs):
        raise subprocess.CalledProcessError(1, args[0], stderr="slurm_load_partitions: timeout\n")

    monkeypatch.setattr(cluster.subprocess, "run", fails)
    with pytest.raises(ClusterError, match="`sinfo` failed: slurm_load_partitions: timeout"):
        cluster.query_partitions()
