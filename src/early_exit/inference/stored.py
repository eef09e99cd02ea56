"""Reading stored exit logits (`exit_logits.npz`) without importing torch.

Calibration, sweeps and analysis work from these arrays alone; keeping this module
free of the model stack makes those jobs start in a fraction of a second.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from early_exit.errors import DataError


def load_exit_logits(path: Path) -> dict[str, np.ndarray]:
    """Read a stored exit-logits file (never unpickles)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot read stored exit logits ({err}); rerun predict") from err
