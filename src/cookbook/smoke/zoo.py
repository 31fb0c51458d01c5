"""A zoo of tiny offline checkpoints shaped like the model families users bring, for tests that need more
than the friendly smoke Llama.

Each member is built from a transformers config and a byte-level BPE tokenizer trained locally on the smoke
data, with its family's real special tokens and its *real* chat template, copied from the templates the TRL
wheel ships (`trl/chat_templates/*.jinja`, the files TRL compares checkpoints against; copied into
`chat_templates/`). No weights are downloaded. What each member reproduces:

- `tiny-llama`: the project's smoke model (ChatML with `{% generation %}` markers, EOS = end of turn).
- `qwen2.5-base`: base Qwen2.5: ChatML without markers, default system prompt "You are a helpful
  assistant.", EOS `<|endoftext|>` while turns end with `<|im_end|>`, q/k/v biases, tied embeddings.
- `llama-3`: Llama 3.2: header tokens, date lines in the system turn, `<|eot_id|>` ends a turn, EOS
  `<|end_of_text|>`, BOS added by the tokenizer and by the template, no pad token.
- `gemma`: Gemma 2: no system role (the template raises), `<end_of_turn>`, EOS `<eos>`.
- `gpt2`: a GPT-2 base: no chat template at all, Conv1D layers with biases, EOS = BOS, no pad token.
- `qwen3`: Qwen3: the last assistant turn gets a `<think>` block that earlier turns lose.
- `phi-3`: Phi-3: `<|end|>` ends a turn and the template closes the conversation with an extra EOS.

Members are saved like hub checkpoints (safetensors, tokenizer files, chat template) once per cache key,
written to a temporary folder and renamed, so parallel test workers never see half a model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from cookbook.smoke.data import tokenizer_training_text
from cookbook.smoke.tiny_model import default_cache_dir, pretrain, save_once, save_tiny_model

QWEN_BASE_SYSTEM = "You are a helpful assistant."
QWEN_INSTRUCT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."


def trl_template(name: str) -> str:
    """A checkpoint's own chat template, byte for byte as the TRL wheel ships it (copied into
    `chat_templates/` so that environments without TRL build the zoo too)."""
    return resources.files("cookbook.smoke").joinpath("chat_templates", f"{name}.jinja").read_text()


def qwen2_5_base_template() -> str:
    """Base Qwen2.5 checkpoints ship the Instruct template with another default system prompt, which is why
    TRL, comparing templates byte for byte, does not recognise them."""
    template = trl_template("qwen2_5")
    assert QWEN_INSTRUCT_SYSTEM in template
    return template.replace(QWEN_INSTRUCT_SYSTEM, QWEN_BASE_SYSTEM)


@dataclass(frozen=True)
class Member:
    name: str
    config_class: str  # a transformers config class name
    special_tokens: tuple[str, ...]  # in vocabulary order, first ids
    tokens: dict  # bos/eos/pad/unk -> token (None: the family has none)
    template: str | None  # name of a TRL template, "qwen2_5_base", or None (no chat template)
    config: dict = field(default_factory=dict)  # architecture keywords beyond the shared sizes
    add_bos: bool = False  # the tokenizer adds BOS itself (Llama 3, Gemma, Phi-3 do)
    extra_tokens: tuple[str, ...] = ()  # added, not special (Qwen3's <think> tags)
    pretrain_steps: int = 0
    description: str = ""


SHARED = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}

MEMBERS = {
    "qwen2.5-base": Member(
        "qwen2.5-base",
        "Qwen2Config",
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        {"bos": None, "eos": "<|endoftext|>", "pad": "<|endoftext|>"},
        "qwen2_5_base",
        {"num_key_value_heads": 2, "tie_word_embeddings": True},
        description="ChatML without markers, EOS <|endoftext|> != end of turn <|im_end|>, q/k/v biases, tied embeddings",
    ),
    "llama-3": Member(
        "llama-3",
        "LlamaConfig",
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        {"bos": "<|begin_of_text|>", "eos": "<|end_of_text|>", "pad": None},
        "llama3_2",
        {"num_key_value_heads": 2, "tie_word_embeddings": True},
        add_bos=True,
        description="header tokens, date lines, <|eot_id|> != EOS <|end_of_text|>, no pad token",
    ),
    "gemma": Member(
        "gemma",
        "Gemma2Config",
        ("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
        {"bos": "<bos>", "eos": "<eos>", "pad": "<pad>", "unk": "<unk>"},
        "gemma",
        {"num_key_value_heads": 2, "head_dim": 16, "sliding_window": 64},
        add_bos=True,
        description="no system role, <end_of_turn> != EOS <eos>",
    ),
    "gpt2": Member(
        "gpt2",
        "GPT2Config",
        ("<|endoftext|>",),
        {"bos": "<|endoftext|>", "eos": "<|endoftext|>", "pad": None, "unk": "<|endoftext|>"},
        None,
        {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 512},
        description="no chat template, Conv1D layers with biases, no pad token",
    ),
    "qwen3": Member(
        "qwen3",
        "Qwen3Config",
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        {"bos": None, "eos": "<|im_end|>", "pad": "<|endoftext|>"},
        "qwen3",
        {"num_key_value_heads": 2, "head_dim": 16, "tie_word_embeddings": True},
        extra_tokens=("<think>", "</think>"),
        description="the last assistant turn gets a <think> block that earlier turns lose",
    ),
    "phi-3": Member(
        "phi-3",
        "Phi3Config",
        ("<unk>", "<s>", "</s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"),
        {"bos": "<s>", "eos": "<|endoftext|>", "pad": "<|endoftext|>", "unk": "<unk>"},
        "phi3",
        {"num_key_value_heads": 4},
        add_bos=True,
        description="<|end|> ends a turn and the template closes the conversation with an extra EOS",
    ),
}
ZOO = ("tiny-llama", *MEMBERS)
DESCRIPTIONS = {"tiny-llama": "the smoke model: ChatML with {% generation %} markers, EOS = end of turn"} | {
    name: member.description for name, member in MEMBERS.items()
}


def _template(member: Member) -> str | None:
    if member.template is None:
        return None
    return qwen2_5_base_template() if member.template == "qwen2_5_base" else trl_template(member.template)


def train_member_tokenizer(member: Member, vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the smoke data with the member's special tokens and template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(member.special_tokens),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_training_text(), trainer=trainer)
    bos = member.tokens.get("bos")
    if member.add_bos:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tokenizer.token_to_id(bos))]
        )
    named = {f"{key}_token": value for key, value in member.tokens.items() if value is not None}
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=512, **named)
    if member.extra_tokens:
        fast.add_tokens(list(member.extra_tokens))
    fast.chat_template = _template(member)
    return fast


def build_member(member: Member, seed: int = 0):
    """The member's tokenizer and a randomly initialised model (same weights for the same seed)."""
    tokenizer = train_member_tokenizer(member)
    ids = {
        f"{key}_token_id": tokenizer.convert_tokens_to_ids(value) if value else None
        for key, value in member.tokens.items()
        if key != "unk"
    }
    config_class = getattr(transformers, member.config_class)
    sizes = {} if member.config_class == "GPT2Config" else dict(SHARED, max_position_embeddings=512)
    config = config_class(vocab_size=len(tokenizer), **sizes, **member.config, **ids)
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model, tokenizer


def _cache_key(member: Member) -> str:
    sources = [Path(__file__), Path(__file__).with_name("data.py"), Path(__file__).with_name("tiny_model.py")]
    payload = json.dumps(member.__dict__, sort_keys=True, default=str) + (_template(member) or "")
    payload += "".join(p.read_text() for p in sources) + transformers.__version__
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def save_member(name: str, cache_dir: str | Path | None = None) -> Path:
    """The saved folder of zoo member `name` (built on first use, then cached)."""
    if name == "tiny-llama":
        return save_tiny_model(cache_dir=cache_dir)
    if name not in MEMBERS:
        raise ValueError(f"unknown zoo member {name!r}: use one of {list(ZOO)}")
    member = MEMBERS[name]

    def build():
        model, tokenizer = build_member(member)
        if member.pretrain_steps:
            pretrain(model, tokenizer, member.pretrain_steps)
        return model, tokenizer

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    return save_once(cache_dir / f"zoo-{name}-{_cache_key(member)}", build)
