"""Self-speculative decoding gives plain greedy output, token for token."""

import pytest
from tiny_decoder import prompts, tiny_llama, training_text

from early_exit.decoder.exits import ExitMaps, train_exits
from early_exit.decoder.peer import hf_generate
from early_exit.decoder.speculative import DraftVocabulary, speculative_generate
from early_exit.decoder.stack import DecoderStack
from early_exit.support.errors import ConfigError


@pytest.fixture(scope="module")
def tiny():
    model = tiny_llama()
    stack = DecoderStack(model)
    exits, _ = train_exits(stack, training_text(), [1, 2, 3], epochs=1, batch=64)
    reference = {tuple(p): hf_generate(model, p, 16).tokens for p in prompts(5)}
    return model, stack, exits, reference


@pytest.mark.parametrize("exit_layer", [1, 2, 3])
@pytest.mark.parametrize("draft_length", [1, 3, 6])
def test_equals_greedy(tiny, exit_layer, draft_length):
    _, stack, exits, reference = tiny
    for prompt, greedy in reference.items():
        out = speculative_generate(stack, exits, list(prompt), exit_layer, draft_length, 16)
        assert out.tokens == greedy
        assert out.stats["accepted"] <= out.stats["drafted"]


def test_drafts_are_accepted_and_stopping_early_keeps_the_output(tiny):
    _, stack, exits, reference = tiny
    accepted = 0
    for prompt, greedy in reference.items():
        out = speculative_generate(stack, exits, list(prompt), 3, 4, 16)
        accepted += out.stats["accepted"]
        stopped = speculative_generate(stack, exits, list(prompt), 3, 4, 16, draft_stop=0.5)
        assert stopped.tokens == greedy
        assert stopped.stats["mean_draft"] <= out.stats["mean_draft"]
    assert accepted > 0  # the accept path runs, not only the one-token fallback


def test_a_draft_vocabulary_keeps_the_output(tiny):
    _, stack, exits, reference = tiny
    small = DraftVocabulary(stack, [[5, 5, 5, 9, 9, 40]], 2)
    assert small.ids.tolist() == [5, 9]
    full = DraftVocabulary(stack, [list(range(96))], 96)
    for prompt, greedy in reference.items():
        narrow = speculative_generate(stack, exits, list(prompt), 3, 4, 16, vocabulary=small)
        assert narrow.tokens == greedy
        wide = speculative_generate(stack, exits, list(prompt), 3, 4, 16, vocabulary=full)
        plain = speculative_generate(stack, exits, list(prompt), 3, 4, 16)
        assert wide.tokens == greedy
        assert wide.stats == plain.stats  # every id in the vocabulary: the same drafts


def test_untrained_identity_exits_also_give_greedy(tiny):
    model, stack, _, reference = tiny
    identity = ExitMaps(model.config.hidden_size, [2])
    prompt, greedy = next(iter(reference.items()))
    assert speculative_generate(stack, identity, list(prompt), 2, 5, 16).tokens == greedy


def test_the_length_limit_and_the_end_token(tiny):
    model, stack, exits, _ = tiny
    prompt = prompts(1)[0]
    assert len(speculative_generate(stack, exits, prompt, 2, 5, 3).tokens) == 3
    end = hf_generate(model, prompt, 40).tokens
    out = speculative_generate(stack, exits, prompt, 2, 5, 40).tokens
    assert out == end
    assert len(out) == 40 or out[-1] == model.config.eos_token_id


def test_the_peer_equals_greedy(tiny):
    model, _, _, reference = tiny
    for prompt, greedy in list(reference.items())[:2]:
        assert hf_generate(model, list(prompt), 16, assistant_early_exit=2).tokens == greedy


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"exit_layer": 4}, "exit_layer"),
        ({"draft_length": 0}, "draft_length"),
        ({"max_new_tokens": 0}, "max_new_tokens"),
        ({"draft_stop": 1.5}, "draft_stop"),
    ],
)
def test_knobs_out_of_range(tiny, kwargs, named):
    _, stack, exits, _ = tiny
    settings = {"exit_layer": 2, "draft_length": 3, "max_new_tokens": 8, **kwargs}
    with pytest.raises(ConfigError, match=named):
        speculative_generate(stack, exits, [5, 6, 7], **settings)
