"""Preference data for DPO: formats accepted, bad rows stopped with one line, the smoke pairs shaped as the recipe
needs (chosen right and short, rejected wrong or rambling), and the likelihood ranking used in the evaluation."""

import datasets
import pytest

from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.preference_data import (
    CONVERSATIONAL,
    STANDARD,
    as_turns,
    check_preference_dataset,
    explicit_prompt,
)
from cookbook.preference_eval import preference_accuracy, reply_logp
from cookbook.smoke.data import COLORS, OPPOSITES, preference_pairs, write_smoke_dataset
from cookbook.smoke.tiny_model import save_tiny_model

USER = [{"role": "user", "content": "What color is snow?"}]
GOOD = [{"role": "assistant", "content": "white"}]
BAD = [{"role": "assistant", "content": "green"}]


def test_explicit_and_implicit_conversational_pairs_are_accepted():
    explicit = datasets.Dataset.from_list([{"prompt": USER, "chosen": GOOD, "rejected": BAD}])
    implicit = datasets.Dataset.from_list([{"chosen": USER + GOOD, "rejected": USER + BAD}])
    assert check_preference_dataset(explicit) == check_preference_dataset(implicit) == CONVERSATIONAL
    split = explicit_prompt(implicit[0])
    assert split == {"prompt": USER, "chosen": GOOD, "rejected": BAD}


def test_a_string_prompt_beside_whole_conversations_is_taken_from_the_conversations():
    rows = datasets.Dataset.from_list(
        [{"prompt": "What color is snow?", "chosen": USER + GOOD, "rejected": USER + BAD}]
    )
    assert check_preference_dataset(rows) == CONVERSATIONAL
    assert explicit_prompt(rows[0]) == {"prompt": USER, "chosen": GOOD, "rejected": BAD}


def test_standard_pairs_become_turns_for_the_chat_template():
    rows = datasets.Dataset.from_list([{"prompt": "What color is snow?", "chosen": "white", "rejected": "green"}])
    assert check_preference_dataset(rows) == STANDARD
    assert as_turns(rows[0]) == {"prompt": USER, "chosen": GOOD, "rejected": BAD}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "hi", "answer": "x"}], "lacking"),
        ([{"prompt": "hi", "chosen": "a", "rejected": "a"}], "identical"),
        ([{"prompt": "hi", "chosen": " ", "rejected": "b"}], "empty"),
        ([{"prompt": "hi", "chosen": GOOD, "rejected": BAD}], "chosen is conversational but prompt is standard"),
        ([{"prompt": USER, "chosen": [{"role": "robot", "content": "x"}], "rejected": BAD}], "unknown role"),
        ([{"prompt": GOOD, "chosen": GOOD, "rejected": BAD}], "end with a user turn"),
        ([{"prompt": "hi", "chosen": 3, "rejected": "b"}], "int"),
        ([], "lacking"),
    ],
)
def test_bad_preference_rows_stop_with_one_line(rows, message):
    dataset = datasets.Dataset.from_list(rows) if rows else datasets.Dataset.from_dict({"prompt": []})
    with pytest.raises(CookbookInputError, match=message) as error:
        check_preference_dataset(dataset)
    assert "\n" not in str(error.value)


def test_smoke_pairs_prefer_the_right_short_answer(tmp_path):
    rows = preference_pairs(200, seed=3)
    assert check_preference_dataset(datasets.Dataset.from_list(rows)) == CONVERSATIONAL
    answers = set(OPPOSITES.values()) | set(COLORS.values())
    wrong = rambling = 0
    for row in rows:
        chosen, rejected = row["chosen"][0]["content"], row["rejected"][0]["content"]
        assert chosen in answers and row["prompt"][-1]["role"] == "user"
        if rejected in answers:
            wrong += 1
            assert rejected != chosen
        else:
            rambling += 1
            assert rejected.startswith(chosen) and len(rejected.split()) > 5
    assert wrong > 50 and rambling > 50, "both kinds of rejected reply must be common"
    folder = write_smoke_dataset("preferences", tmp_path, n_train=64, n_test=16)
    assert (folder / "train.jsonl").exists() and (folder / "test.jsonl").exists()


def test_likelihood_ranking_flips_when_chosen_and_rejected_swap():
    path = str(save_tiny_model())
    model, tokenizer = load_causal_lm(path), load_tokenizer(path)
    rows = preference_pairs(12, seed=5)
    swapped = [{"prompt": r["prompt"], "chosen": r["rejected"], "rejected": r["chosen"]} for r in rows]
    forward, backward = preference_accuracy(model, tokenizer, rows), preference_accuracy(model, tokenizer, swapped)
    assert forward["accuracy"] + backward["accuracy"] == pytest.approx(1.0)  # no exact ties in float32
    assert forward["mean_per_token_gap"] == pytest.approx(-backward["mean_per_token_gap"])


def test_reply_logp_counts_the_reply_and_its_end_of_turn_token():
    path = str(save_tiny_model())
    model, tokenizer = load_causal_lm(path), load_tokenizer(path)
    logp, n_tokens = reply_logp(model, tokenizer, USER, GOOD)
    reply_tokens = tokenizer("white", add_special_tokens=False)["input_ids"]
    assert n_tokens >= len(reply_tokens) + 1  # the reply and <|im_end|> (and the template's newline)
    assert logp < 0
