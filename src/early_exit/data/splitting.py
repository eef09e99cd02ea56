"""Deduplication and seeded, stratified splitting over plain label lists.

Everything here works on indices into a pool, not on the examples themselves, so the
same split can be applied to different views of the same documents (BBC articles and
BBC headlines get identical document splits). Results are returned in pool order, so
output files do not depend on the shuffling inside scikit-learn.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from sklearn.model_selection import train_test_split

from early_exit.errors import DataError


def normalise_whitespace(text: str) -> str:
    """Collapse runs of whitespace (incl. newlines) to one space and strip the ends."""
    return " ".join(text.split())


@dataclass(frozen=True)
class DedupResult:
    keep: list[int]  # pool indices kept, in pool order
    dropped: int  # examples removed in total (extra copies + every copy of a conflict)
    conflicting: int  # of those, examples whose duplicates carried a different label


def deduplicate(keys: Sequence[Hashable], labels: Sequence[int]) -> DedupResult:
    """Keep the first occurrence of each key; drop every copy of a key with conflicting labels.

    Duplicates must go before splitting: a text in both train and test inflates test
    accuracy. A text with two labels cannot be learned and cannot be fairly scored, so all
    its copies are dropped rather than picking one label arbitrarily.
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
    labels: Sequence[int], fractions: Mapping[str, float], seed: int
) -> dict[str, list[int]]:
    """Split a pool into `train` plus the roles in `fractions` (`dev`, `test`).

    Each fraction is of the whole pool, not of what is left, so `{dev: 0.1, test: 0.2}`
    gives 70/10/20. `test` is carved first, then `dev` from the rest: with the same seed
    and pool, asking for a dev split does not change which examples land in test.
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
        remaining, carved = _stratified(remaining, labels, count, seed, role)
        result[role] = sorted(carved)
    result["train"] = sorted(remaining)
    return result


def stratified_subsample(labels: Sequence[int], n: int, seed: int) -> list[int]:
    """Pick `n` indices with (about) the label proportions of `labels`; all if `n` is larger.

    Used for `max_examples` (small smoke runs), where a plain head-of-file cut could miss
    whole classes.
    """
    if n >= len(labels):
        return list(range(len(labels)))
    _, picked = _stratified(list(range(len(labels))), labels, n, seed, "subsample")
    return sorted(picked)


def _stratified(
    indices: list[int], labels: Sequence[int], count: int, seed: int, what: str
) -> tuple[list[int], list[int]]:
    """Return (rest, picked) with `count` indices picked, stratified on their labels."""
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
