"""Truncation is counted, and examples it leaves without a single assistant token are dropped, not trained on."""

import datasets
import pytest

from cookbook.chat import tokenize_conversation
from cookbook.errors import CookbookInputError
from cookbook.loading import load_tokenizer
from cookbook.smoke.tiny_model import save_tiny_model
from cookbook.truncation import IGNORE_INDEX, cut_splits, cut_tokenized

MAX_LENGTH = 48


def conversation(user_words: int, assistant_words: int) -> list[dict]:
    return [
        {"role": "user", "content": " ".join(["apple"] * user_words)},
        {"role": "assistant", "content": " ".join(["pear"] * assistant_words)},
    ]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(str(save_tiny_model()))


@pytest.fixture(scope="module")
def rows():
    # fits; assistant turn cut but partly kept; user turn alone longer than MAX_LENGTH (nothing left to learn)
    return datasets.Dataset.from_list(
        [{"messages": conversation(3, 3)}, {"messages": conversation(3, 200)}, {"messages": conversation(200, 3)}]
    )


def test_cut_tokenized_counts_cut_and_lost_examples(tokenizer, rows):
    full = rows.map(lambda row: tokenize_conversation(row["messages"], tokenizer, max_length=None))
    assert max(len(ids) for ids in full["input_ids"]) > 100  # tokenized without a limit

    cut, report = cut_tokenized(full, MAX_LENGTH)

    assert (report.examples, report.cut, report.dropped) == (3, 2, 1)
    assert report.longest == max(len(ids) for ids in full["input_ids"])
    assert len(cut) == 2
    assert all(len(ids) <= MAX_LENGTH for ids in cut["input_ids"])
    assert all(any(label != IGNORE_INDEX for label in labels) for labels in cut["labels"])
    assert cut[1]["input_ids"] == full[1]["input_ids"][:MAX_LENGTH]
    assert "2 of 3 examples were longer than max_length=48" in str(report)
    assert "1 lost every assistant token and were dropped" in str(report)
    assert report.as_metrics()["dropped"] == 1


def test_nothing_cut_says_so(tokenizer, rows, capsys):
    full = rows.select([0]).map(lambda row: tokenize_conversation(row["messages"], tokenizer, max_length=None))
    splits, reports = cut_splits(datasets.DatasetDict({"train": full, "test": full}), MAX_LENGTH)
    assert len(splits["train"]) == 1 and reports["test"].cut == 0
    assert "train: 0 of 1 examples were longer" in capsys.readouterr().out


def test_a_split_left_with_nothing_to_learn_stops_with_one_line(tokenizer, rows):
    full = rows.select([2]).map(lambda row: tokenize_conversation(row["messages"], tokenizer, max_length=None))
    with pytest.raises(CookbookInputError, match=r"^every one of the 1 test examples loses all its assistant tokens"):
        cut_tokenized(full, MAX_LENGTH, "test")
