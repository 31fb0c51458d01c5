"""Unit tests for instruction-data formats, chat templates and the exact-match metric (cookbook.sft_data)."""

import datasets
import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from cookbook.errors import CookbookInputError
from cookbook.loading import load_causal_lm, load_tokenizer
from cookbook.sft_data import (
    CONVERSATIONAL,
    PROMPT_COMPLETION,
    chat_prompt_completion,
    check_sft_dataset,
    detect_format,
    end_of_turn_token,
    ensure_chat_template,
    exact_match,
    prompt_and_answer,
)
from cookbook.smoke.data import short_answers, write_smoke_dataset
from cookbook.smoke.tiny_model import save_tiny_model

CHAT = [{"role": "user", "content": "Opposite of hot?"}, {"role": "assistant", "content": "cold"}]


@pytest.fixture(scope="module")
def tiny_path():
    return str(save_tiny_model())


def test_detect_format_names_both_formats_and_rejects_others():
    assert detect_format(["messages"]) == CONVERSATIONAL
    assert detect_format(["prompt", "completion", "id"]) == PROMPT_COMPLETION
    with pytest.raises(CookbookInputError, match=r"expected conversational data .* or prompt-completion") as error:
        detect_format(["text"])
    assert "\n" not in str(error.value)
    with pytest.raises(CookbookInputError):
        detect_format(["prompt"])  # a prompt without a completion


def test_check_sft_dataset_accepts_both_formats():
    conversational = datasets.Dataset.from_list([{"messages": CHAT}])
    assert check_sft_dataset(conversational) == CONVERSATIONAL
    strings = datasets.Dataset.from_list([{"prompt": "2+2=", "completion": "4"}])
    assert check_sft_dataset(strings) == PROMPT_COMPLETION
    turns = datasets.Dataset.from_list([{"prompt": CHAT[:1], "completion": CHAT[1:]}])
    assert check_sft_dataset(turns) == PROMPT_COMPLETION


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"messages": CHAT}, {"messages": [{"role": "robot", "content": "hi"}, CHAT[1]]}],
            "row 1 .*unknown role 'robot'",
        ),
        ([{"messages": CHAT[:1]}], "no assistant turn"),
        ([{"prompt": "a", "completion": ""}], "completion is empty"),
        ([{"prompt": CHAT[:1], "completion": CHAT}], "assistant turns only"),
        ([{"text": "plain text"}], "expected conversational data"),
    ],
)
def test_bad_rows_stop_with_one_line_naming_the_problem(rows, message):
    with pytest.raises(CookbookInputError, match=message) as error:
        check_sft_dataset(datasets.Dataset.from_list(rows))
    assert "\n" not in str(error.value)


def test_mixed_prompt_completion_types_are_rejected():
    with pytest.raises(CookbookInputError, match="both be strings or both lists"):
        check_sft_dataset(datasets.Dataset.from_dict({"prompt": ["q"], "completion": [[CHAT[1]]]}))


def test_string_prompt_completion_becomes_turns_and_gives_prompt_and_answer():
    row = chat_prompt_completion({"prompt": "Opposite of hot?", "completion": "cold"})
    assert row == {"prompt": CHAT[:1], "completion": CHAT[1:]}
    assert prompt_and_answer(row) == (CHAT[:1], "cold")
    system = [{"role": "system", "content": "Be brief."}]
    assert prompt_and_answer({"messages": system + CHAT}) == (system + CHAT[:1], "cold")
    with pytest.raises(CookbookInputError):
        prompt_and_answer({"prompt": "Opposite of hot?", "completion": "cold"})


def test_ensure_chat_template_keeps_an_existing_template_and_sets_chatml_otherwise(tiny_path):
    tokenizer = load_tokenizer(tiny_path)
    model = load_causal_lm(tiny_path)
    assert not ensure_chat_template(tokenizer, model), "a tokenizer with a template keeps it"

    # A base tokenizer without a template and without the ChatML tokens.
    bare = AutoTokenizer.from_pretrained(tiny_path)
    bare.chat_template = None
    rows_before = model.get_input_embeddings().num_embeddings
    assert ensure_chat_template(bare, model)  # the tiny vocabulary has the ChatML tokens: nothing to add
    assert model.get_input_embeddings().num_embeddings == rows_before
    assert "<|im_start|>assistant" in bare.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)


def test_ensure_chat_template_adds_missing_special_tokens():

    vocab = {chr(c): i for i, c in enumerate(range(97, 123))} | {"<eos>": 26}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    backend.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>", pad_token="<eos>")
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=27,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
        )
    )
    assert ensure_chat_template(tokenizer, model)
    assert {"<|im_start|>", "<|im_end|>"} <= set(tokenizer.get_vocab())
    assert model.get_input_embeddings().num_embeddings == len(tokenizer) == 29
    assert end_of_turn_token(tokenizer) == "<|im_end|>"
    with pytest.raises(CookbookInputError, match="pass the model"):
        fresh = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")
        fresh.chat_template = None
        ensure_chat_template(fresh)


def test_end_of_turn_token_finds_the_token_after_the_reply(tiny_path):
    tokenizer = load_tokenizer(tiny_path)
    assert end_of_turn_token(tokenizer) == "<|im_end|>"
    tokenizer.chat_template = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    with pytest.raises(CookbookInputError, match="cannot learn to stop"):
        end_of_turn_token(tokenizer)


def test_exact_match_ignores_whitespace_only():
    assert exact_match(["cold", " new \n", "Dark"], ["cold", "new", "dark"]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        exact_match(["a"], [])


def test_short_answers_held_out_split_asks_known_facts_in_unseen_conversations(tmp_path):
    assert short_answers(10, seed=3) == short_answers(10, seed=3)
    folder = write_smoke_dataset("short_answers", tmp_path)
    train = datasets.load_dataset("json", data_files=str(folder / "train.jsonl"))["train"]
    test = datasets.load_dataset("json", data_files=str(folder / "test.jsonl"))["train"]
    assert len(test) >= 32
    train_answers = {row["messages"][-1]["content"] for row in train}
    assert all(row["messages"][-1]["content"] in train_answers for row in test)
    assert not {str(r) for r in train["messages"]} & {str(r) for r in test["messages"]}
    assert all(len(row["messages"][-1]["content"].split()) == 1 for row in test)
