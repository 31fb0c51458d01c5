import importlib.util

import pytest
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from cookbook.errors import CookbookInputError
from cookbook.peft_checks import check_target_modules, linear_layer_names, require_bitsandbytes


def tiny_gpt2():
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32))


def tiny_llama():
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    return LlamaForCausalLM(config)


def peft_targets(model, target_modules):
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=target_modules))
    return sorted(name.removeprefix("base_model.model.") for name in peft_model.targeted_module_names)


def test_llama_names_are_found():
    names = linear_layer_names(tiny_llama())
    assert names["q_proj"] == 2 and names["down_proj"] == 2 and names["lm_head"] == 1


def test_llama_names_on_gpt2_fail_with_one_line_listing_gpt2_layers():
    with pytest.raises(CookbookInputError) as error:
        check_target_modules(tiny_gpt2(), ["q_proj", "v_proj"])
    message = str(error.value)
    assert "\n" not in message
    assert "c_attn" in message and "c_proj" in message and "c_fc" in message


@pytest.mark.parametrize(
    ("make", "targets"),
    [
        (tiny_gpt2, ["c_attn"]),
        (tiny_gpt2, "all-linear"),
        (tiny_llama, ["q_proj", "v_proj"]),
        (tiny_llama, "all-linear"),
        (tiny_llama, r".*\.mlp\..*_proj"),
    ],
)
def test_selection_agrees_with_peft(make, targets):
    selected = check_target_modules(make(), targets)
    assert sorted(selected) == peft_targets(make(), targets)


def test_regex_must_match_the_whole_path():
    with pytest.raises(CookbookInputError, match="matches no linear layer"):
        check_target_modules(tiny_llama(), "q_proj")  # a regex string is matched against full paths


def test_non_list_target_modules_is_rejected():
    with pytest.raises(CookbookInputError, match="must be a list"):
        check_target_modules(tiny_llama(), 3)


def test_missing_bitsandbytes_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name))
    with pytest.raises(CookbookInputError) as error:
        require_bitsandbytes()
    assert "\n" not in str(error.value) and "pixi install -e peft" in str(error.value)


def test_bitsandbytes_present_reports_its_version():
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("bitsandbytes is a Linux-only dependency")
    assert require_bitsandbytes()[0].isdigit()
