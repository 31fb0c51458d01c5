"""The loss mask, end-of-turn alignment and stop check on every zoo member (tiny offline checkpoints
shaped like base Qwen2.5, Llama 3, Gemma, GPT-2, Qwen3 and Phi-3, plus the smoke Llama)."""

import pytest
import torch

from cookbook.chat import (
    IGNORE_INDEX,
    end_of_turn_token,
    masked_segments,
    render,
    tokenize_conversation,
)
from cookbook.errors import CookbookInputError
from cookbook.loading import load_tokenizer
from cookbook.smoke.data import chat_examples, multi_turn_examples
from cookbook.smoke.zoo import QWEN_BASE_SYSTEM, ZOO, save_member
from cookbook.training import generate_replies
from tests.zoo_fixtures import END_OF_TURN, TWO_TURNS, expected_segments, load_member

pytestmark = pytest.mark.zoo


@pytest.mark.parametrize("member", ZOO)
def test_mask_covers_exactly_each_reply_and_its_end_of_turn_token(member):
    _, tokenizer, _ = load_member(member)
    example = tokenize_conversation(TWO_TURNS, tokenizer, max_length=512)
    assert masked_segments(example, tokenizer) == expected_segments(member)


@pytest.mark.parametrize("member", ZOO)
def test_mask_is_exact_on_the_multi_turn_smoke_data(member):
    _, tokenizer, _ = load_member(member)
    for row in multi_turn_examples(8, seed=3) + chat_examples(8, seed=4):
        example = tokenize_conversation(row["messages"], tokenizer, max_length=512)
        assert masked_segments(example, tokenizer) == expected_segments(member, row["messages"])
        assert len(example["labels"]) == len(example["input_ids"])


@pytest.mark.parametrize("member", ["qwen3", "phi-3"])
def test_templates_that_rewrite_turns_put_no_user_token_under_the_mask(member):
    """Issue item 6: the prefix-rendered mask bracketed `It is 5.<|im_end|>\\n<|im_start|>user\\nAnd` (Qwen3) and
    `It is 5.<|end|>\\n<|user|>` (Phi-3)."""
    _, tokenizer, _ = load_member(member)
    example = tokenize_conversation(TWO_TURNS, tokenizer, max_length=512)
    trained = tokenizer.decode(
        [t for t, label in zip(example["input_ids"], example["labels"], strict=True) if label != IGNORE_INDEX]
    )
    assert "user" not in trained and "And" not in trained
    assert masked_segments(example, tokenizer)[0] == "It is 5." + END_OF_TURN[member]


def test_a_template_without_a_system_role_gets_the_system_prompt_merged_into_the_first_user_turn():
    _, tokenizer, _ = load_member("gemma")
    with pytest.raises(CookbookInputError, match="System role not supported"):
        render(tokenizer, TWO_TURNS)
    example = tokenize_conversation(TWO_TURNS, tokenizer, max_length=512)
    assert "You are a helpful assistant.\n\nWhat is 2 plus 3?" in tokenizer.decode(example["input_ids"])


@pytest.mark.parametrize(
    ("member", "end_of_turn", "original_eos"),
    [
        ("qwen2.5-base", "<|im_end|>", "<|endoftext|>"),
        ("llama-3", "<|eot_id|>", "<|end_of_text|>"),
        ("gemma", "<end_of_turn>", "<eos>"),
        ("phi-3", "<|end|>", "<|endoftext|>"),
        ("gpt2", "<|im_end|>", "<|endoftext|>"),
    ],
)
def test_end_of_turn_becomes_eos_and_heads_the_generation_config(member, end_of_turn, original_eos, tmp_path):
    """Issue item 2: base Qwen2.5's EOS `<|endoftext|>` is not the token that closes a turn."""
    _, tokenizer, model = load_member(member, align=False)
    assert tokenizer.eos_token == original_eos
    from cookbook.chat import align_end_of_turn

    assert align_end_of_turn(tokenizer, model, verbose=False) == end_of_turn
    end_id, original_id = (tokenizer.convert_tokens_to_ids(t) for t in (end_of_turn, original_eos))
    assert tokenizer.eos_token == end_of_turn
    assert model.generation_config.eos_token_id[0] == end_id and original_id in model.generation_config.eos_token_id
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert load_tokenizer(str(tmp_path)).eos_token == end_of_turn
    from transformers import GenerationConfig

    assert GenerationConfig.from_pretrained(tmp_path).eos_token_id[0] == end_id


def test_the_qwen2_5_base_member_has_the_shape_of_the_real_checkpoint():
    _, tokenizer, model = load_member("qwen2.5-base", align=False)
    assert QWEN_BASE_SYSTEM in tokenizer.chat_template and "Alibaba" not in tokenizer.chat_template
    assert "{% generation %}" not in tokenizer.chat_template
    assert model.config.tie_word_embeddings
    attention = model.model.layers[0].self_attn
    assert all(getattr(attention, name).bias is not None for name in ("q_proj", "k_proj", "v_proj"))
    assert save_member("qwen2.5-base") == save_member("qwen2.5-base")  # cached


def test_the_gpt2_member_has_conv1d_layers_and_no_template():
    from transformers.pytorch_utils import Conv1D

    tokenizer = load_tokenizer(str(save_member("gpt2")))
    assert tokenizer.chat_template is None
    _, _, model = load_member("gpt2")
    assert any(isinstance(module, Conv1D) for module in model.modules())


class _ScriptedModel(torch.nn.Module):
    """Generates a fixed reply: end of turn, then on, stopping only at what generation_config lists."""

    def __init__(self, model, reply_ids):
        super().__init__()
        self.model, self.reply_ids = model, reply_ids
        self.generation_config = model.generation_config
        self.device = torch.device("cpu")

    def generate(self, input_ids, attention_mask=None, max_new_tokens=8, **kwargs):
        stops = self.generation_config.eos_token_id
        stops = [stops] if isinstance(stops, int) else stops
        out = []
        for token in self.reply_ids[:max_new_tokens]:
            out.append(token)
            if token in stops:
                break
        return torch.cat([input_ids, torch.tensor([out])], dim=1)


def test_a_reply_that_runs_past_the_end_of_turn_does_not_count_as_stopped():
    """Issue item 2: `stopped_at_eos` checked the tokenizer EOS anywhere in the reply, so a model that wrote
    `<|im_end|>` and ran on to `<|endoftext|>` counted as stopped."""
    _, tokenizer, model = load_member("qwen2.5-base", align=False)
    end_id, eos_id = tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    runs_on = [10, 11, end_id, 12, 13, eos_id]
    prompt = [TWO_TURNS[1]]
    assert generate_replies(_ScriptedModel(model, runs_on), tokenizer, [prompt])[0]["stopped_at_eos"] is False
    from cookbook.chat import align_end_of_turn

    align_end_of_turn(tokenizer, model, verbose=False)
    assert generate_replies(_ScriptedModel(model, runs_on), tokenizer, [prompt])[0]["stopped_at_eos"] is True


def test_end_of_turn_token_of_each_member():
    for member, token in END_OF_TURN.items():
        _, tokenizer, _ = load_member(member, align=False)
        assert end_of_turn_token(tokenizer) == token


@pytest.mark.parametrize(
    "readme", ["02-PEFT/README.md", "03-Instruction-Tuning/README.md", "04-Reasoning-Tuning/README.md"]
)
def test_each_chat_technique_readme_lists_every_zoo_member(readme, repo_root):
    text = (repo_root / readme).read_text()
    section = text.split("## Model families tested offline", 1)[1].split("\n## ", 1)[0]
    assert all(f"`{member}`" in section for member in ZOO)
