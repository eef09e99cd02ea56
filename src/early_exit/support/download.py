"""Download models and datasets from the Hugging Face hub into a cache under `data/`.

At paper scale the workflow's download rules run where there is internet (local rules:
the login node of a cluster) and put plain directories under `hub_cache` (default
`data/hub`):

    data/hub/models/<owner>--<name>/        config, tokenizer files, weights (safetensors
                                            preferred; a .bin only when there is none)
    data/hub/datasets/<path>--<name>/       a DatasetDict saved with `save_to_disk`

Compute jobs then load those directories with the hub switched off, so they need no
network. Each copy is written atomically: an interrupted download leaves nothing that
looks complete. Both functions also accept what `huggingface_hub` / `datasets` accept
offline: a repository already in the local HF cache, or a local directory laid out like
a hub repository.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from early_exit.support.atomic import atomic_dir
from early_exit.support.errors import DataError

log = logging.getLogger(__name__)

OTHER_PATTERNS = ("*.json", "*.txt", "*.model")  # configs, vocab.txt, sentencepiece models
NO_NETWORK_HINT = (
    "run the download step on a machine with internet (e.g. the cluster's login node: "
    "`snakemake download --cores 1 --configfile ...`) or copy the directory there"
)


def cache_name(repo_or_path: str, name: str | None = None) -> str:
    """Directory name of a model or dataset in the cache: `owner/name` -> `owner--name`."""
    base = repo_or_path.strip("/").replace("/", "--")
    return f"{base}--{name}" if name else base


def model_dir(cache: str | Path, repo_id: str) -> Path:
    return Path(cache) / "models" / cache_name(repo_id)


def dataset_dir(cache: str | Path, path: str, name: str | None) -> Path:
    return Path(cache) / "datasets" / cache_name(path, name)


def download_model(
    repo_id: str, out_dir: Path, revision: str | None = None, hf_cache: str | None = None
) -> Path:
    """Copy a model repository (config, tokenizer, weights) into `out_dir`.

    Safetensors weights are fetched when the repository has them; `.bin` weights only
    when it has none (they are then read with torch's weights-only loader).
    """
    from huggingface_hub import snapshot_download

    def snapshot(weights: str) -> Path:
        return Path(
            snapshot_download(
                repo_id=repo_id,
                revision=revision,
                cache_dir=hf_cache,
                allow_patterns=[*OTHER_PATTERNS, weights],
            )
        )

    try:
        local = snapshot("*.safetensors")
        if not any(local.glob("*.safetensors")):
            local = snapshot("*.bin")
    except Exception as err:  # hub errors come in many types; all mean "not available"
        raise DataError(
            f"cannot download model {repo_id!r} ({type(err).__name__}: {err}); {NO_NETWORK_HINT}"
        ) from err
    if not (local / "config.json").is_file():
        raise DataError(f"model {repo_id!r} has no config.json: not a transformers model")
    with atomic_dir(out_dir) as tmp:
        shutil.copytree(local, tmp, dirs_exist_ok=True, symlinks=False)
    log.info("model %s -> %s", repo_id, out_dir)
    return out_dir


def download_dataset(
    path: str, name: str | None, out_dir: Path, revision: str | None = None
) -> Path:
    """Save every split of a hub dataset (or local hub-like directory) into `out_dir`."""
    import datasets

    try:
        dataset = datasets.load_dataset(path, name, revision=revision)
    except Exception as err:
        desc = path + (f"/{name}" if name else "")
        raise DataError(
            f"cannot download dataset {desc!r} ({type(err).__name__}: {err}); {NO_NETWORK_HINT}"
        ) from err
    with atomic_dir(out_dir) as tmp:
        dataset.save_to_disk(str(tmp))
    log.info(
        "dataset %s/%s -> %s: %s",
        path,
        name,
        out_dir,
        {split: len(ds) for split, ds in dataset.items()},
    )
    return out_dir
