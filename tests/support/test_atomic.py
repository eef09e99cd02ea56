"""Atomic outputs: all or nothing under the final name, with the modes the umask allows."""

import contextlib
import os
import stat

import numpy as np
import pytest

from early_exit.support.atomic import atomic_dir, atomic_path, existing_dir, write_json, write_text


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o002, 0o664, 0o775)]
)
def test_outputs_get_the_modes_a_plain_open_and_mkdir_would(tmp_path, mask, file_mode, dir_mode):
    with umask(mask):
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
        (tmp_path / "plain_dir").mkdir()
        write_text(tmp_path / "a.txt", "hello")
        write_json(tmp_path / "b.json", {"k": 1})
        with atomic_path(tmp_path / "c.npz") as tmp:
            np.savez(tmp, x=np.arange(3))  # a writer that opens the path itself
        with atomic_dir(tmp_path / "model") as tmp:
            (tmp / "weights.bin").write_bytes(b"\0")
            write_text(tmp / "config.json", "{}")  # atomic inside atomic
    assert mode(plain) == file_mode and mode(tmp_path / "plain_dir") == dir_mode  # the reference
    for name in ("a.txt", "b.json", "c.npz", "model/weights.bin", "model/config.json"):
        assert mode(tmp_path / name) == file_mode, name
    assert mode(tmp_path / "model") == dir_mode


def test_a_failed_write_leaves_the_old_output_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_a_failed_directory_write_keeps_the_complete_version(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "w").write_text("v1")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "w").write_text("half")
        raise RuntimeError("interrupted")
    assert (target / "w").read_text() == "v1" and existing_dir(target) == target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)]
)
def test_a_model_directory_gets_the_umask_modes_weights_included(
    tmp_path, mask, file_mode, dir_mode
):
    """safetensors creates its file 0600 whatever the umask; a model directory's every
    file (nested ones too) must still be readable as the umask allows."""
    import torch
    from safetensors.torch import save_file

    with umask(mask), atomic_dir(tmp_path / "model") as tmp:
        save_file({"w": torch.zeros(2)}, str(tmp / "model.safetensors"))
        (tmp / "tokenizer").mkdir()
        (tmp / "tokenizer" / "vocab.txt").write_text("a\n")
        os.chmod(tmp / "tokenizer" / "vocab.txt", 0o600)
        (tmp / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(tmp / "run.sh", 0o700)
    model = tmp_path / "model"
    assert mode(model / "model.safetensors") == file_mode
    assert mode(model / "tokenizer" / "vocab.txt") == file_mode
    assert mode(model / "tokenizer") == dir_mode and mode(model) == dir_mode
    assert mode(model / "run.sh") == dir_mode  # executable stays executable, umask applied


def test_a_writer_killed_mid_write_leaves_nothing_after_the_next_write(tmp_path):
    """SIGKILL runs no cleanup: the temporaries of a killed write (a folder with a half
    file in it, a file) go when the target is written again, and only those."""
    from early_exit.support.atomic import remove_stale_temporaries

    stale_dir = tmp_path / ".state.ab12cd_9.tmp"
    stale_dir.mkdir()
    (stale_dir / ".tmpxyz").write_text("half")
    (tmp_path / ".out.txt.zz1jcn_u.tmp").write_text("half")
    keep = [tmp_path / ".other.ab12cd_9.tmp", tmp_path / ".state.safetensors.ab12cd_9.tmp"]
    for path in keep:
        path.write_text("not ours")
    with atomic_dir(tmp_path / "state") as tmp:
        (tmp / "w").write_text("v1")
    write_text(tmp_path / "out.txt", "done")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(["state", "out.txt", *(p.name for p in keep)])
    stale_dir.mkdir()
    remove_stale_temporaries(tmp_path / "state")  # as the training's discard_state does
    assert not stale_dir.exists()
