"""What every training job shares: the task's training split, seeding, and a resumable fit.

Fine-tuning (`early_exit.runners.finetune`) and elastic pre-training
(`early_exit.recipes.elastic_pretrain`) differ in their model and batches, not in how
a run is set up, identified for resuming, trained and cleaned up: that lives here.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from early_exit.data.prepared import load_manifest, load_split
from early_exit.training.batching import Collator, Encoded, encode
from early_exit.training.hardware import describe
from early_exit.training.loop import discard_state, fit, training_precision
from early_exit.training.runtime import pick_device, seed_everything
from early_exit.training.settings import TrainingSettings
from early_exit.training.stage import Stage


def run_fingerprint(*parts) -> str:
    """Identifies a training run, so a stale resume state is never continued."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class TrainingRun:
    """One training job on one prepared task: its data, seed, device and resume state."""

    manifest: dict
    examples: list[dict]
    seed: int
    device: torch.device
    state_dir: Path | None  # None: a job that does not resume (COST-EFF's slenderize)

    @classmethod
    def start(
        cls, data_dir: Path, state_dir: Path | None, seed: int, device: str, threads: int | None
    ) -> TrainingRun:
        """Read the training split and seed every RNG (before any model is built)."""
        manifest = load_manifest(data_dir)
        examples = load_split(data_dir, "train")
        seed_everything(seed, threads)
        state = Path(state_dir) if state_dir is not None else None
        return cls(manifest, examples, seed, pick_device(device), state)

    @property
    def task_type(self) -> str:
        return self.manifest.get("task_type", "classification")

    @property
    def num_labels(self) -> int:
        return 1 if self.task_type == "regression" else len(self.manifest["label_names"])

    def encode(self, tokenizer) -> Encoded:
        return encode(self.examples, tokenizer, self.manifest["max_length"])

    def collator(self, tokenizer, data: Encoded) -> Collator:
        """Batches with labels as the task wants them (floats for regression)."""
        label_dtype = torch.float32 if self.task_type == "regression" else torch.long
        return Collator(tokenizer, data, label_dtype)

    def model_meta(
        self, backbone: dict, method: dict, settings: TrainingSettings, progress: dict
    ) -> dict:
        """What a model directory records about the run that trained it (the engine reads
        the task's labels, text fields and length; the deck, the time and the hardware);
        the training settings as the config gave them."""
        return {
            "task": self.manifest["task"],
            "task_type": self.task_type,
            "label_names": self.manifest["label_names"],
            "text_fields": self.manifest.get("text_fields", ["text"]),
            "max_length": self.manifest["max_length"],
            "backbone": backbone,
            "method": method,
            "training": settings.given,
            "precision": training_precision(self.device, settings),
            "seed": self.seed,
            "progress": progress,
            "hardware": describe(str(self.device)),
        }

    def fit(
        self,
        model,
        data: Encoded,
        collate,
        stages: list[Stage],
        settings: TrainingSettings,
        *identity,
        on_step=None,
    ) -> dict:
        """Train (resuming this run's saved state if any); `identity` (backbone, method,
        settings...) and the training data's checksum tell this run from any other."""
        # the precision actually used: bf16 asked for trains in fp32 on hardware without it,
        # and a run must not resume on other hardware in the other precision
        precision = training_precision(self.device, settings)
        fingerprint = run_fingerprint(
            *identity, self.seed, self.manifest["splits"]["train"]["sha256"], precision
        )
        return fit(
            model,
            data,
            collate,
            stages,
            settings=settings,
            seed=self.seed,
            device=self.device,
            state_dir=self.state_dir,
            on_step=on_step,
            fingerprint=fingerprint,
        )

    def finish(self) -> None:
        """Remove the resume state once the final output is safely written."""
        discard_state(self.state_dir)
