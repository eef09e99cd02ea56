"""Features and columns of small GLUE-like datasets (NLI pairs, STS-B scores) for tests."""

from datasets import ClassLabel, Features, Value

NLI_FEATURES = Features(
    {
        "premise": Value("string"),
        "hypothesis": Value("string"),
        "label": ClassLabel(names=["entailment", "neutral", "contradiction"]),
    }
)


STS_FEATURES = Features(
    {"sentence1": Value("string"), "sentence2": Value("string"), "label": Value("float32")}
)


def nli_columns(labels, prefix):
    """One split's columns: a distinct premise and hypothesis per label (-1: unlabeled)."""
    return {
        "premise": [f"{prefix} p{i}" for i in range(len(labels))],
        "hypothesis": [f"{prefix} h{i}" for i in range(len(labels))],
        "label": labels,
    }
