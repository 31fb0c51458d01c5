"""Unit tests for the verifiable rewards and the math-problem preparation of the reasoning recipe."""

import warnings

import pytest

from cookbook.errors import CookbookInputError
from cookbook.reasoning_data import normalize_problem, prepare_problems, split_gsm8k_answer
from cookbook.rewards import (
    UnparseableGoldWarning,
    correctness_reward,
    drop_unparseable,
    extract_answer,
    follows_format,
    format_reward,
    format_target,
    is_correct,
)
from cookbook.smoke.data import math_problems

GOOD = "<think>Tom has 3 + 4 = 7 apples.</think>\n<answer>7</answer>"


def as_conversation(text):
    return [{"role": "assistant", "content": text}]


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (GOOD, "7"),
        ("<answer> 12 </answer>", "12"),
        ("<answer>3</answer> no, wait <answer>5</answer>", "5"),  # the last block counts
        ("The answer is 7", None),  # no answer block
        ("<answer></answer>", None),  # empty block
        ("<answer>7", None),  # never closed (a truncated completion)
        ("", None),
    ],
)
def test_extract_answer(completion, expected):
    assert extract_answer(completion) == expected
    assert extract_answer(as_conversation(completion)) == expected


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        (GOOD, "7", True),
        ("<think>x</think><answer>7.0</answer>", "7", True),  # math-verify compares values, not strings
        ("<think>x</think><answer>$7$</answer>", "7", True),
        ("<think>x</think><answer>0.5</answer>", "1/2", True),
        ("<think>x</think><answer>1,234</answer>", "1234", True),
        ("<think>x</think><answer>17</answer>", "7", False),
        ("<think>x</think><answer>seven</answer>", "7", False),  # unparseable prediction is wrong, not an error
        ("<think>7</think>", "7", False),  # the right number outside the answer block earns nothing
        ("7", "7", False),
        ("<answer>7", "7", False),  # truncated
        (GOOD, "n/a", None),  # gold cannot be checked
        (GOOD, "", None),
        (GOOD, None, None),
    ],
)
def test_is_correct(completion, gold, expected):
    assert is_correct(completion, gold) is expected


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        (GOOD, True),
        ("  <think>a</think><answer>1</answer>\n", True),
        ("<think></think><answer>1</answer>", False),  # empty reasoning: the cheapest hack of the format reward
        ("<think>a</think><answer> </answer>", False),
        ("<answer>1</answer>", False),
        ("<think>a</think>", False),
        ("<answer>1</answer><think>a</think>", False),  # wrong order
        ("<think>a</think><answer>1</answer> and more text", False),
        ("<think>a</think><answer>1</answer><answer>2</answer>", False),  # two answers
        ("<think>a<think>b</think><answer>1</answer>", False),  # nested tags
        ("<think>a</think><answer>1", False),  # truncated
        ("", False),
    ],
)
def test_follows_format(completion, expected):
    assert follows_format(completion) is expected
    assert follows_format(as_conversation(completion)) is expected


def test_format_target_round_trips_through_both_checks():
    target = format_target(" 3 + 4 = 7 ", "7")
    assert follows_format(target)
    assert is_correct(target, "7")


def test_reward_functions_take_trl_arguments_in_both_formats():
    completions = [GOOD, "<think>x</think><answer>8</answer>", "garbage", ""]
    prompts = ["q"] * len(completions)
    answer = ["7"] * len(completions)
    assert correctness_reward(prompts, completions, answer=answer, trainer_state=None) == [1.0, 0.0, 0.0, 0.0]
    assert format_reward(prompts, completions, answer=answer, trainer_state=None) == [1.0, 1.0, 0.0, 0.0]
    conversational = [as_conversation(c) for c in completions]
    assert correctness_reward(prompts, conversational, answer=answer) == [1.0, 0.0, 0.0, 0.0]
    assert format_reward(prompts, conversational) == [1.0, 1.0, 0.0, 0.0]


def test_unparseable_gold_gets_no_reward_and_a_warning():
    with pytest.warns(UnparseableGoldWarning, match="1 of 2"):
        rewards = correctness_reward(["q", "q"], [GOOD, GOOD], answer=["7", "n/a"])
    assert rewards == [1.0, None]  # None: TRL leaves it out, it is not a 0


def test_drop_unparseable_counts_and_warns():
    rows = [{"answer": "7"}, {"answer": "unknown"}, {"answer": ""}, {"answer": "3.5"}]
    with pytest.warns(UnparseableGoldWarning, match="skipped 2 of 4"):
        kept = drop_unparseable(rows)
    assert kept == [{"answer": "7"}, {"answer": "3.5"}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert drop_unparseable(kept) == kept  # nothing to skip: no warning


def test_split_gsm8k_answer():
    text = "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nSo 48+24 = <<48+24=72>>72 in total.\n#### 1,072"
    solution, answer = split_gsm8k_answer(text)
    assert answer == "1072"
    assert "<<" not in solution and solution.endswith("72 in total.")
    assert split_gsm8k_answer("no final answer here") == ("no final answer here", "")


def test_prepare_problems_from_smoke_and_gsm8k_rows():
    smoke = math_problems(5, seed=0)
    gsm8k = [{"question": "How many?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"}, {"question": "Q", "answer": "none"}]
    with pytest.warns(UnparseableGoldWarning, match="skipped 1 of 7"):
        prepared = prepare_problems(smoke + gsm8k)
    assert len(prepared) == 6
    for row in prepared:
        assert [m["role"] for m in row["prompt"]] == ["system", "user"]
        completion = row["completion"][0]["content"]
        assert follows_format(completion) and is_correct(completion, row["answer"])
    assert prepared[-1]["answer"] == "4"


def test_prepare_problems_rejects_bad_input_in_one_line():
    with pytest.raises(CookbookInputError, match="'question' and 'answer'"):
        normalize_problem({"text": "hello"})
    with pytest.raises(CookbookInputError, match="parseable") as error, pytest.warns(UnparseableGoldWarning):
        prepare_problems([{"question": "Q", "answer": "none"}])
    assert "\n" not in str(error.value)


def test_answer_accuracy_scores_greedy_replies_and_skips_unparseable_gold():
    from cookbook.loading import load_causal_lm, load_tokenizer
    from cookbook.rewards import answer_accuracy
    from cookbook.smoke.tiny_model import save_tiny_model

    path = str(save_tiny_model())
    model, tokenizer = load_causal_lm(path), load_tokenizer(path)
    rows = prepare_problems(math_problems(3, seed=5))
    rows.append({**rows[0], "answer": "not a number"})
    with pytest.warns(UnparseableGoldWarning, match="skipped 1 of 4"):
        result = answer_accuracy(model, tokenizer, rows, max_new_tokens=8)
    assert result["n"] == 3 and len(result["replies"]) == 3
    assert result["accuracy"] == 0.0  # an untrained model writes no answer block
    assert all(set(reply) == {"reply", "stopped_at_eos", "correct"} for reply in result["replies"])


def test_small_math_problems_have_correct_equations_and_disjoint_splits(tmp_path):
    from cookbook.smoke.data import small_math_problems, write_smoke_dataset

    rows = small_math_problems(200, seed=3)
    assert rows == small_math_problems(200, seed=3)
    for row in rows:
        left, result = row["solution"].split(" = ")
        assert eval(left) == int(result) == int(row["answer"]) >= 0  # the equation is the worked solution
        assert all(1 <= int(n) <= 5 for n in left.split() if n.isdigit())
    folder = write_smoke_dataset("math-small", tmp_path, n_train=100, n_test=20)
    train, test = ((folder / f"{s}.jsonl").read_text().splitlines() for s in ("train", "test"))
    assert len(test) == 20 and not set(train) & set(test)
