"""Deduplication and seeded, stratified splitting over plain label lists.

Everything here works on indices into a pool, not on the examples themselves, so the
same split can be applied to different views of the same documents (BBC articles and
BBC headlines get identical document splits). Results are returned in pool order, so
output files do not depend on the shuffling inside scikit-learn.

Labels are class ids, or floats for a regression task (`continuous=True`): a float
label takes too many values to stratify on, so its quantile bin is used instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from early_exit.support.errors import DataError

log = logging.getLogger(__name__)

# Quantile bins a continuous label is stratified on; fewer are used when a pool is too
# small for this many (see `quantile_strata`).
QUANTILE_BINS = 5


def normalise_whitespace(text: str) -> str:
    """Collapse runs of whitespace (incl. newlines) to one space and strip the ends."""
    return " ".join(text.split())


@dataclass(frozen=True)
class DedupResult:
    keep: list[int]  # pool indices kept, in pool order
    dropped: int  # examples removed in total (extra copies + every copy of a conflict)
    conflicting: int  # of those, examples whose duplicates carried a different label


def deduplicate(keys: Sequence[Hashable], labels: Sequence[Hashable]) -> DedupResult:
    """Keep the first occurrence of each key; drop every copy of a key with conflicting labels.

    Duplicates must go before splitting: a text in both train and test inflates test
    accuracy. A text with two labels cannot be learned and cannot be fairly scored, so all
    its copies are dropped rather than picking one label arbitrarily. Float labels
    (regression) are compared exactly: copies scored 3.8 and 4.0 conflict too.
    """
    if len(keys) != len(labels):
        raise ValueError("keys and labels differ in length")
    groups: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    keep: list[int] = []
    conflicting = 0
    for members in groups.values():
        if len({labels[i] for i in members}) > 1:
            conflicting += len(members)
        else:
            keep.append(members[0])
    keep.sort()
    return DedupResult(keep=keep, dropped=len(keys) - len(keep), conflicting=conflicting)


def carve_splits(
    labels: Sequence[float],
    fractions: Mapping[str, float],
    seed: int,
    continuous: bool = False,
) -> dict[str, list[int]]:
    """Split a pool into `train` plus the roles in `fractions` (`dev`, `test`).

    Each fraction is of the whole pool, not of what is left, so `{dev: 0.1, test: 0.2}`
    gives 70/10/20. `test` is carved first, then `dev` from the rest: with the same seed
    and pool, asking for a dev split does not change which examples land in test.
    With `continuous`, labels are floats and each carve is stratified on their quantile
    bins within the examples still left.
    """
    unknown = set(fractions) - {"dev", "test"}
    if unknown:
        raise ValueError(f"can only carve dev and test, not {sorted(unknown)}")
    n = len(labels)
    remaining = list(range(n))
    result: dict[str, list[int]] = {}
    for role in ("test", "dev"):
        if role not in fractions:
            continue
        count = round(fractions[role] * n)
        if count < 1 or count >= len(remaining):
            raise DataError(
                f"cannot carve a {role} split of {fractions[role]:g} from {n} examples "
                f"({count} examples, {len(remaining)} left to split)"
            )
        remaining, carved = _stratified(remaining, labels, count, seed, role, continuous)
        result[role] = sorted(carved)
    result["train"] = sorted(remaining)
    return result


def stratified_subsample(
    labels: Sequence[float], n: int, seed: int, continuous: bool = False
) -> list[int]:
    """Pick `n` indices with (about) the label proportions of `labels`; all if `n` is larger.

    Used for `max_examples` (small smoke runs), where a plain head-of-file cut could miss
    whole classes, or (`continuous`) the high or low end of a regression label's range.
    """
    if n >= len(labels):
        return list(range(len(labels)))
    indices = list(range(len(labels)))
    _, picked = _stratified(indices, labels, n, seed, "subsample", continuous)
    return sorted(picked)


def quantile_strata(values: Sequence[float], count: int) -> list[int] | None:
    """Quantile-bin ids of `values` to stratify a draw of `count` of them; None if too few.

    Stratifying on the bins keeps each split's label distribution (mean, spread, tails)
    close to the pool's, as stratifying on class ids does for a classifier. Up to
    `QUANTILE_BINS` bins are tried, then fewer: scikit-learn needs at least 2 examples
    per bin and at least one bin's worth of examples on each side of the split. Tied
    values (e.g. many labels of exactly 0) merge bins, so there may be fewer than asked.
    """
    n = len(values)
    for bins in range(QUANTILE_BINS, 1, -1):
        edges = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
        strata = np.searchsorted(np.unique(edges), values, side="right").tolist()
        sizes = Counter(strata)
        if len(sizes) < 2:
            return None  # all values tied: nothing to stratify on
        if min(sizes.values()) >= 2 and len(sizes) <= min(count, n - count):
            return strata
    return None


def _stratified(
    indices: list[int],
    labels: Sequence[float],
    count: int,
    seed: int,
    what: str,
    continuous: bool = False,
) -> tuple[list[int], list[int]]:
    """Return (rest, picked) with `count` indices picked, stratified on their labels.

    Continuous labels fall back to an unstratified (still seeded) draw when the pool is
    too small for even two bins: for a regression task that is a worse split, not an
    unusable one, whereas a classifier's split that misses a class is an error.
    """
    if continuous:
        return _stratified_continuous(indices, labels, count, seed, what)
    strata = [labels[i] for i in indices]
    try:
        rest, picked = train_test_split(
            indices, test_size=count, stratify=strata, random_state=seed, shuffle=True
        )
    except ValueError as err:
        counts = {label: strata.count(label) for label in sorted(set(strata))}
        raise DataError(
            f"cannot draw a stratified {what} of {count} from {len(indices)} examples "
            f"(examples per label id: {counts}): {err}"
        ) from err
    return list(rest), list(picked)


def _stratified_continuous(
    indices: list[int], labels: Sequence[float], count: int, seed: int, what: str
) -> tuple[list[int], list[int]]:
    strata = quantile_strata([labels[i] for i in indices], count)
    if strata is None:
        log.warning(
            "%s of %d from %d examples: too few to stratify on label quantiles; drawn at random",
            what,
            count,
            len(indices),
        )
    else:
        log.info("%s: stratified on %d label quantile bins", what, len(set(strata)))
    rest, picked = train_test_split(
        indices, test_size=count, stratify=strata, random_state=seed, shuffle=True
    )
    return list(rest), list(picked)
