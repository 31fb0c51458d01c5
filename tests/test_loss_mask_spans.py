"""The assistant-only loss mask, read back as text: each trained span is exactly one assistant turn and its
end-of-turn token, nothing of the turn before or after it. A `startswith` check would pass a mask whose end
slides onto the next turn's `<|im_start|>user`."""

import itertools
import re

import pytest

from cookbook.chat import IGNORE_INDEX, tokenize_conversation
from cookbook.loading import load_tokenizer
from cookbook.smoke.tiny_model import save_tiny_model


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(save_tiny_model()))


def trained_spans(example: dict, tokenizer) -> list[str]:
    """The decoded text of each run of consecutive tokens the loss trains on."""
    runs = itertools.groupby(zip(example["input_ids"], example["labels"], strict=True), lambda p: p[1] != IGNORE_INDEX)
    return [tokenizer.decode([token for token, _ in run]) for trained, run in runs if trained]


def assert_exactly_the_assistant_turns(spans: list[str], replies: list[str]) -> None:
    # ChatML ends a turn with `<|im_end|>` and a newline; the newline may be trained on or not.
    assert len(spans) == len(replies), spans
    for span, reply in zip(spans, replies, strict=True):
        assert span in (f"{reply}<|im_end|>", f"{reply}<|im_end|>\n"), f"trained on {span!r} for the reply {reply!r}"


@pytest.mark.parametrize(
    "messages",
    [
        [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2 plus 2?"},
            {"role": "assistant", "content": "2 plus 2 is 4."},
        ],
        [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"},
            {"role": "assistant", "content": "Goodbye"},
        ],
    ],
    ids=["one-turn", "two-turns"],
)
def test_each_trained_span_is_one_assistant_turn(messages, tokenizer):
    example = tokenize_conversation(messages, tokenizer, max_length=256)
    replies = [turn["content"] for turn in messages if turn["role"] == "assistant"]
    assert_exactly_the_assistant_turns(trained_spans(example, tokenizer), replies)


def test_the_check_fails_a_mask_that_slides_onto_the_next_turn(tokenizer):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Bye"},
        {"role": "assistant", "content": "Goodbye"},
    ]
    example = tokenize_conversation(messages, tokenizer, max_length=256)
    labels = example["labels"]
    first_end = next(i for i in range(1, len(labels)) if labels[i - 1] != IGNORE_INDEX and labels[i] == IGNORE_INDEX)
    slid = {**example, "labels": [*labels[:first_end], *example["input_ids"][first_end : first_end + 3]]}
    slid["labels"] += labels[first_end + 3 :]
    with pytest.raises(AssertionError, match=re.escape("for the reply 'Hello'")):
        assert_exactly_the_assistant_turns(trained_spans(slid, tokenizer), ["Hello", "Goodbye"])
