"""Cross-task prediction: the target's labels become indices into the model's labels."""

import pytest

from early_exit.inference.predict import transfer_labels
from early_exit.support.errors import DataError


def test_same_names_in_another_order_and_mapped_names():
    assert transfer_labels(["a", "b", "c"], ["c", "a", "b"], None, "k").tolist() == [2, 0, 1]
    mapped = transfer_labels(
        ["negative", "positive"], ["neg", "pos"], {"neg": "negative", "pos": "positive"}, "k"
    )
    assert mapped.tolist() == [0, 1]


def test_unmapped_labels_name_the_config_key():
    with pytest.raises(DataError, match=r"splitee.pairs\[0\]: labels \['pos'\]"):
        transfer_labels(["negative", "positive"], ["negative", "pos"], None, "splitee.pairs[0]")
