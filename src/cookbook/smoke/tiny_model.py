"""An offline stand-in for a hub model: a small Llama-style causal LM built from a config, with a
byte-level BPE tokenizer trained locally on the project's smoke data and a ChatML chat template.

Smoke runs and tests use it so that no weights are downloaded. It is deterministic for a seed and
saved like any hub checkpoint (safetensors, tokenizer files, chat template), so the notebooks load it
through exactly the same `from_pretrained` calls they use for real models.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from cookbook import chat_template
from cookbook.chat_template import CHATML_TEMPLATE
from cookbook.smoke.data import text_corpus, tokenizer_training_text

BOS, EOS, PAD = "<|begin_of_text|>", "<|im_end|>", "<|pad|>"
SPECIAL_TOKENS = [PAD, BOS, "<|im_start|>", EOS]  # ChatML; EOS closes a turn


@dataclass(frozen=True)
class TinyModelSpec:
    vocab_size: int = 512
    hidden_size: int = 64
    intermediate_size: int = 192
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    max_position_embeddings: int = 512
    pretrain_steps: int = 300  # a short pretraining on generated prose, so the base model knows some language
    seed: int = 0

    def cache_key(self) -> str:
        """Changes whenever the spec or the code and data that build the model change."""
        sources = [Path(__file__), Path(__file__).with_name("data.py"), Path(chat_template.__file__)]
        payload = json.dumps(asdict(self), sort_keys=True) + "".join(p.read_text() for p in sources)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]


def default_cache_dir() -> Path:
    return Path(os.environ.get("COOKBOOK_CACHE", Path.home() / ".cache" / "llm-finetuning-cookbook"))


def train_tiny_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on the smoke data, with ChatML special tokens."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(tokenizer_training_text(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token=BOS, eos_token=EOS, pad_token=PAD, model_max_length=512
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_model(
    spec: TinyModelSpec = TinyModelSpec(),
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Build the tokenizer and a randomly initialized Llama model (same weights for the same seed)."""
    tokenizer = train_tiny_tokenizer(spec.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def pretrain(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerFast, steps: int, block: int = 64) -> float:
    """A few hundred steps of next-token prediction on generated prose; returns the last loss.

    Like a real base model, the result has seen plain text but never a chat template or an
    instruction, so every recipe still has something to teach it.
    """
    text = tokenizer.eos_token.join(row["text"] for row in text_corpus(2000, seed=21))
    ids = torch.tensor(tokenizer.backend_tokenizer.encode(text, add_special_tokens=False).ids)
    blocks = ids[: len(ids) // block * block].view(-1, block)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    generator = torch.Generator().manual_seed(0)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = blocks[torch.randint(len(blocks), (16,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return loss.item()


def save_once(target: Path, build) -> Path:
    """Save the model and tokenizer `build()` returns into `target`, unless a previous call already did.

    The folder is written to a temporary name and renamed, so parallel test workers never see a
    half-written model.
    """
    if (target / "model.safetensors").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    model, tokenizer = build()
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # another process finished first; its copy is identical
        shutil.rmtree(staging, ignore_errors=True)
    return target


def save_tiny_model(spec: TinyModelSpec = TinyModelSpec(), cache_dir: str | Path | None = None) -> Path:
    """Save the tiny model once per spec under the cache folder and return its path."""

    def build():
        model, tokenizer = build_tiny_model(spec)
        if spec.pretrain_steps:
            pretrain(model, tokenizer, spec.pretrain_steps)
        return model, tokenizer

    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    return save_once(cache_dir / f"tiny-llama-{spec.cache_key()}", build)
