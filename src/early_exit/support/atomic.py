"""Atomic file output: write to a temporary sibling, then rename.

An interrupted job therefore never leaves a truncated file under the final name
that a rerun (or Snakemake) could mistake for a complete output.

`tempfile` creates its files 0600 and its directories 0700 whatever the umask; the
outputs get the modes a plain `open()` / `mkdir()` would give under the current umask
before they are renamed into place, so colleagues sharing a results directory (a
cluster's shared filesystem) can read them, and a group can rerun part of it. A
directory's files get them too: some writers (safetensors) create theirs 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from early_exit.support.errors import DataError

CHECKSUMS = "checksums.json"


def umask_mode(base: int) -> int:
    """`base` (0o666 for files, 0o777 for directories) less the process's umask."""
    mask = os.umask(0)  # the only way to read it; set back at once
    os.umask(mask)
    return base & ~mask


def remove_stale_temporaries(target: str | os.PathLike) -> None:
    """Remove what an earlier writer of `target` killed mid-write (SIGKILL runs no cleanup)
    left: its temporary siblings `.{name}.XXXXXXXX.tmp`, files or folders. A target has one
    writer at a time (Snakemake locks its outputs), so these are never another's live work."""
    target = Path(target)
    if not target.parent.is_dir():
        return
    stale = re.compile(re.escape(f".{target.name}.") + r"[a-z0-9_]{8}\.tmp")
    for entry in target.parent.iterdir():
        if stale.fullmatch(entry.name):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `target`; rename it onto `target` on success.

    The temporary file lives in the same directory so the final `os.replace` is
    atomic on POSIX. On error the temporary file is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, umask_mode(0o666))
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike) -> Iterator[Path]:
    """Like `atomic_path` for a directory: build it under a temporary name, then swap it in."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    old = target.with_name(f".{target.name}.old")
    try:
        yield tmp
        give_umask_modes(tmp)
        # Move the previous version aside rather than deleting it first, so there is
        # never a moment when neither version exists (see `existing_dir`).
        if target.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
        os.replace(tmp, target)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def give_umask_modes(directory: Path) -> None:
    """Every folder and file under `directory` (itself included) gets the mode `mkdir()` /
    `open()` would give under the umask; an executable file stays executable."""
    dir_mode, file_mode, exe_mode = umask_mode(0o777), umask_mode(0o666), umask_mode(0o777)
    os.chmod(directory, dir_mode)
    for root, dirs, files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), dir_mode)
        for name in files:
            path = os.path.join(root, name)
            executable = os.lstat(path).st_mode & 0o111
            os.chmod(path, exe_mode if executable else file_mode)


def existing_dir(target: str | os.PathLike) -> Path | None:
    """The complete version of a directory written by `atomic_dir`, if any.

    Covers a crash between the two renames, when only the `.old` copy exists.
    """
    target = Path(target)
    if target.is_dir():
        return target
    old = target.with_name(f".{target.name}.old")
    return old if old.is_dir() else None


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(directory: str | os.PathLike) -> None:
    """Record the sha256 of every file under `directory` in its `checksums.json`; called
    inside `atomic_dir`, so the list and the files take their final name together."""
    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    digests = {p.relative_to(directory).as_posix(): sha256_file(p) for p in files}
    write_json(directory / CHECKSUMS, {"sha256": digests})


def verify_checksums(directory: str | os.PathLike, rewrite: str) -> bool:
    """Check every file `checksums.json` lists against its sha256; a DataError naming the
    file and `rewrite` (what rewrites the directory) when one is missing or differs.
    False when the directory has no list (written before lists were, or not by us)."""
    path = Path(directory) / CHECKSUMS
    if not path.is_file():
        return False
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot read the checksum list ({err}); {rewrite}") from None
    listed = listed.get("sha256") if isinstance(listed, dict) else None
    if not isinstance(listed, dict):
        raise DataError(f"{path}: not a checksum list (no sha256 table); {rewrite}")
    for name, digest in listed.items():
        file = Path(directory) / name
        if not file.is_file():
            raise DataError(f"{file}: missing (listed in {CHECKSUMS}); {rewrite}")
        if sha256_file(file) != digest:
            raise DataError(
                f"{file}: checksum differs from {CHECKSUMS}: truncated or changed after it "
                f"was written; {rewrite}"
            )
    return True
