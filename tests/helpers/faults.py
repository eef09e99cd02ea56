"""Fault injection's layout and faults (tests/faults/): the run the fixture trains, the
stages as their workflow scripts call them, and what each fault does to a file."""

import numpy as np

from early_exit.exits.calibration import calibrate_file
from early_exit.exits.splitee import SplitEESettings, splitee_file
from early_exit.exits.sweep import sweep_file

TASK, METHOD, SEED = "tiny", "joint", 0
RUN = f"results/{TASK}/{METHOD}/seed{SEED}"
RUN_KEY = {"task": TASK, "method": METHOD, "seed": SEED}
POLICIES = {"entropy": {"num_thresholds": 5}}
SPLITEE = SplitEESettings(offload_costs=(0.1,), lambda_=0.1, lambda_depth=2, orders=2, ucb_c=1.0)
SPLITEE_DIR = f"results/splitee/{TASK}/{TASK}/{METHOD}/seed{SEED}"


def splitee_job(root):
    """What workflow/scripts/splitee.py does for the run's transfer outputs."""
    key = {"source": TASK, "target": TASK, "method": METHOD, "seed": SEED}
    splitee_file(
        root / RUN / "transfer" / TASK / "exit_logits.npz",
        root / SPLITEE_DIR / "splitee.tsv",
        root / SPLITEE_DIR / "regret.tsv",
        SPLITEE,
        0.8,
        "test",
        key,
    )


def sweep_job(root):
    """What workflow/scripts/sweep.py does."""
    run = root / RUN
    calibrate_file(run / "exit_logits.npz", run / "calibration.json")
    sweep_file(
        run / "exit_logits.npz",
        run / "sweep.tsv",
        POLICIES,
        None,
        RUN_KEY,
        run / "calibration.json",
    )


def flip_a_byte(path):
    """The same size, one byte changed in the middle: what only a checksum sees."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def changed_npz(path):
    """A valid npz with one value changed and the digest written with the original."""
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    name = next(k for k in arrays if k.endswith("_logits"))
    arrays[name] = arrays[name].copy()
    arrays[name].flat[0] += 1.0
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


FAULTS = {
    "truncated": lambda path: path.write_bytes(
        path.read_bytes()[: max(1, path.stat().st_size // 3)]
    ),
    "garbage": lambda path: path.write_bytes(b"\x00\xffnot what it should be" * 8),
    "deleted": lambda path: path.unlink(),
}
