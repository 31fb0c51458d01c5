"""Math datasets in other shapes: a local folder under the notebook's default hub config, answers in
\\boxed{} rather than GSM8K's "####", and a set whose answers cannot be read at all (one line saying which
formats work)."""

import json

import pytest

from cookbook.errors import CookbookInputError
from cookbook.reasoning_data import load_problem_splits, prepare_problems, split_gsm8k_answer


def test_a_local_folder_loads_under_the_default_config(tmp_path):
    rows = [{"question": f"{i}+1?", "answer": f"{i}+1={i + 1}\n#### {i + 1}"} for i in range(6)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    splits = load_problem_splits(str(tmp_path), "main")
    assert len(splits["train"]) + len(splits["test"]) == 6


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("Half of 4 is 2, so \\boxed{2}.", "2"),
        ("The ratio is \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("It costs \\boxed{1,200} dollars", "1200"),
        ("no final answer here", ""),
    ],
)
def test_boxed_answers_are_read(text, answer):
    assert split_gsm8k_answer(text) == (text, answer)


def test_boxed_problems_train_like_gsm8k_ones():
    problems = prepare_problems([{"question": "1/2 of 1?", "answer": "Half: \\boxed{\\frac{1}{2}}"}])
    assert problems[0]["answer"] == "\\frac{1}{2}"


def test_answers_in_no_known_format_stop_with_one_line():
    rows = [{"question": "How many?", "answer": "seventy-two"}] * 3
    with pytest.raises(CookbookInputError) as error:
        prepare_problems(rows)
    message = str(error.value)
    assert "\n" not in message and "none of the 3 problems" in message
    assert "'#### <number>'" in message and "\\boxed{<answer>}" in message and "seventy-two" in message
