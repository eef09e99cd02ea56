"""What the deck's generated slides are computed from, read once: `RunTables`.

Rule deck_slides hands the slide writers (`generated.write_slides`,
`findings.write_findings`, `figures.write_figure_slides`) the config, the method info,
the prepared tasks' manifests, the trained models' metadata and the run's tables. They
are read here, each file once and each with the loader its producer's module defines (and
its error naming the file and what rewrites it), so a writer takes one object instead of
a dozen loose values and never reads a file itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from early_exit.analysis.measured import load_measured
from early_exit.analysis.serving import load_serving
from early_exit.data.prepared import load_manifest
from early_exit.exits.operating_points import load_operating_points, load_sweeps
from early_exit.support.errors import DataError
from early_exit.support.tables import read_table

# the keys of `read_run_tables`'s `files` (rule deck_slides' inputs of the same names);
# `serving` and `decoder` may be empty (a run that serves nothing, no decoder stage)
RUN_FILES = (
    "points",
    "intervals",
    "measured",
    "significance",
    "serving",
    "sweeps",
    "exit_scores",
    "ece",
    "reliability",
    "decoder",
)


@dataclass
class Model:
    """A trained model's metadata: `exit_config.json` and the backbone's `config.json`."""

    task: str
    method: str
    seed: int
    meta: dict
    backbone_config: dict

    @classmethod
    def read(cls, model_dir: str | Path) -> Model:
        model_dir = Path(model_dir)
        meta = _read_json(model_dir / "exit_config.json")
        config_path = model_dir / "config.json"
        backbone = _read_json(config_path) if config_path.is_file() else {}
        run = model_dir.parent  # results/{task}/{method}/seed{seed}/model
        return cls(run.parent.parent.name, run.parent.name, int(meta["seed"]), meta, backbone)


def _read_json(path: Path) -> dict:
    """A model directory's JSON (read without torch: its checksums are the loaders' to
    check), or one DataError naming it."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise DataError(
            f"{path}: cannot read it ({err}); rerun rule train (or slenderize)"
        ) from None
    if not isinstance(value, dict):
        raise DataError(f"{path}: not a JSON object; rerun rule train (or slenderize)")
    return value


@dataclass(frozen=True, eq=False)  # eq=False: tables do not compare with ==
class RunTables:
    """One run of the workflow as the deck's generated slides see it."""

    config: dict
    """The validated config (the Snakefile's `config`): seeds, backbone, analysis settings."""
    info: dict[str, dict]
    """Per method instance: recipe, criterion, roles (`analysis.roles.method_info`)."""
    manifests: dict[str, dict]
    """Task -> its prepared data's manifest (`data/{task}/manifest.json`, rule prepare_data)."""
    models: list[Model]
    """Every trained model's metadata (`results/{task}/{method}/seed{seed}/model`, rule train)."""
    points: pd.DataFrame
    """The knob chosen on dev per run and policy (`operating_points.tsv`, rule operating_points)."""
    intervals: pd.DataFrame | None = None
    """Intervals over seeds of the operating points' numbers (rule operating_points)."""
    measured: pd.DataFrame | None = None
    """Measured beside layer speed-ups of every test example (rule latency)."""
    significance: pd.DataFrame | None = None
    """Tests between methods and against the static curve (rule operating_points)."""
    serving: pd.DataFrame | None = None
    """Throughput and tail latency under load (rule serving); None: the run serves nothing."""
    sweeps: pd.DataFrame | None = None
    """Every run's knob sweep, concatenated (`sweep.tsv`, rule sweep)."""
    decoder: pd.DataFrame | None = None
    """The decoder benchmark's summary (rule decoder_benchmark); None: no decoder stage."""
    exit_scores: pd.DataFrame | None = None
    """Each exit's score on its own, per run (rule exits_notebook)."""
    ece: pd.DataFrame | None = None
    """Each exit's ECE before and after temperature scaling (rule calibration_notebook)."""
    reliability: pd.DataFrame | None = None
    """Each exit's confidence against accuracy, before and after (rule calibration_notebook)."""


def read_run_tables(
    config: dict,
    info: dict[str, dict],
    manifest_paths: Mapping[str, str | Path],
    model_dirs: Sequence[str | Path],
    files: Mapping[str, str | Path | Sequence[str | Path]],
) -> RunTables:
    """Read what rule deck_slides gives the slides: `manifest_paths` (task -> its
    manifest.json), `model_dirs`, and `files` keyed by `RUN_FILES` (`serving`: a list,
    empty or absent when the run serves nothing; `decoder`: empty or absent without the
    decoder stage; `sweeps`: a list). A missing, empty or broken file is one DataError
    naming it and the rule that writes it."""
    serving = list(files.get("serving") or [])
    decoder = files.get("decoder") or None
    return RunTables(
        config=config,
        info=info,
        manifests={t: load_manifest(Path(p).parent) for t, p in manifest_paths.items()},
        models=[Model.read(d) for d in model_dirs],
        points=load_operating_points(files["points"]),
        intervals=read_table(files["intervals"], "intervals table", "rule operating_points"),
        measured=load_measured(files["measured"]),
        significance=read_table(
            files["significance"], "significance table", "rule operating_points", allow_empty=True
        ),
        serving=load_serving(serving) if serving else None,
        sweeps=load_sweeps(list(files["sweeps"])),
        decoder=read_table(decoder, "decoder benchmark", "rule decoder_benchmark")
        if decoder
        else None,
        exit_scores=read_table(files["exit_scores"], "exit scores", "rule exits_notebook"),
        ece=read_table(files["ece"], "ECE table", "rule calibration_notebook", allow_empty=True),
        reliability=read_table(
            files["reliability"], "reliability table", "rule calibration_notebook", allow_empty=True
        ),
    )
