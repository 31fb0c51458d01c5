"""The memory planner against the real thing: parameter counts from transformers, bytes from the real
tensors after one optimizer step, and activations from autograd's saved tensors (all on CPU)."""

import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

from cookbook.errors import CookbookInputError
from cookbook.memory_plan import ModelShape, main, plan, saved_activation_bytes
from cookbook.technique_models import build_random_model

SMALL = dict(
    vocab_size=512,
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    tie_word_embeddings=False,
)


@pytest.mark.parametrize(
    "config",
    [
        LlamaConfig(**SMALL),
        LlamaConfig(**{**SMALL, "tie_word_embeddings": True, "attention_bias": True, "mlp_bias": True}),
        Qwen2Config(**{**SMALL, "tie_word_embeddings": True}),
        Qwen3Config(**{**SMALL, "head_dim": 48}),
    ],
    ids=["llama", "llama-tied-bias", "qwen2", "qwen3"],
)
def test_parameter_count_matches_transformers(config):
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert ModelShape.from_config(config).num_parameters() == model.num_parameters()


def tensor_bytes(tensor) -> int:
    return tensor.numel() * tensor.element_size()


def param_bytes(param) -> int:
    """A parameter's bytes; a bitsandbytes Params4bit also owns its quantisation state."""
    total = tensor_bytes(param)
    state = getattr(param, "quant_state", None)
    if state is not None:
        total += tensor_bytes(state.absmax) + tensor_bytes(state.code)
        if state.nested:
            total += tensor_bytes(state.offset) + tensor_bytes(state.state2.absmax) + tensor_bytes(state.state2.code)
    return total


def build(technique):
    return build_random_model(LlamaConfig(**SMALL), technique, torch.bfloat16, lora_rank=8, lora_alpha=8)


def make_optimizer(name, params):
    if name == "adamw":
        return torch.optim.AdamW(params, lr=1e-4)
    import bitsandbytes as bnb

    return bnb.optim.AdamW8bit(params, lr=1e-4)


@pytest.mark.parametrize(
    ("technique", "optimizer"),
    [("full", "adamw"), ("full", "adamw-8bit"), ("lora", "adamw"), ("lora", "adamw-8bit"), ("qlora", "adamw-8bit")],
)
def test_static_memory_matches_real_tensors_after_one_step(technique, optimizer, tmp_path):
    model = build(technique)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, trainable)
    ids = torch.randint(0, SMALL["vocab_size"], (2, 32))
    model.train()
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()

    measured = {
        "weights": sum(param_bytes(p) for p in model.parameters()),
        "gradients": sum(tensor_bytes(p.grad) for p in trainable),
        "optimizer_state": sum(
            tensor_bytes(value) for state in opt.state.values() for value in state.values() if torch.is_tensor(value)
        ),
    }
    predicted = plan(ModelShape.from_config(LlamaConfig(**SMALL)), technique, optimizer=optimizer, lora_rank=8)
    assert predicted.trainable_parameters == sum(p.numel() for p in trainable)
    for part, value in measured.items():
        assert getattr(predicted, part) == pytest.approx(value, rel=0.01), part


@pytest.mark.parametrize(
    ("technique", "dtype"), [("full", torch.bfloat16), ("full", torch.float32), ("lora", torch.bfloat16)]
)
def test_activations_match_autograd_saved_tensors(technique, dtype):
    # a shape the coefficients were not fitted on
    config = LlamaConfig(**{**SMALL, "hidden_size": 160, "intermediate_size": 448, "num_hidden_layers": 3})
    model = build_random_model(config, technique, dtype, lora_rank=8, lora_alpha=8)
    model.train()
    batch, length = 2, 48
    ids = torch.randint(0, config.vocab_size, (batch, length))
    measured, _ = saved_activation_bytes(model, input_ids=ids, labels=ids)
    predicted = plan(
        ModelShape.from_config(config),
        technique,
        batch_size=batch,
        seq_len=length,
        dtype="bf16" if dtype == torch.bfloat16 else "fp32",
        lora_rank=8,
    )
    saved_log_probs = batch * length * config.vocab_size * 4  # the part of `logits` kept for backward
    assert predicted.activations + saved_log_probs == pytest.approx(measured, rel=0.02)


def test_checkpointing_and_8bit_shrink_the_plan():
    shape = ModelShape.from_config(LlamaConfig(**SMALL))
    plain = plan(shape, "full", batch_size=4, seq_len=512)
    assert plan(shape, "full", batch_size=4, seq_len=512, gradient_checkpointing=True).activations < plain.activations
    assert plan(shape, "full", optimizer="adamw-8bit").optimizer_state < plain.optimizer_state
    assert plan(shape, "qlora").weights < plan(shape, "lora").weights
    assert plan(shape, "lora", lora_rank=4).static < plan(shape, "full").static


def test_fit_verdict_uses_reserve_and_headroom():
    shape = ModelShape.from_config(LlamaConfig(**SMALL))
    result = plan(shape, "full", batch_size=1, seq_len=128)
    gib_needed = result.total / 1024**3
    assert result.fits(gib_needed / 0.9 + 1.01)
    assert not result.fits(gib_needed + 1.0)


def test_cli_reads_a_config_file(tmp_path, capsys):
    LlamaConfig(**SMALL).save_pretrained(tmp_path)
    main(["--model", str(tmp_path / "config.json"), "--technique", "qlora", "--batch-size", "2", "--gpu-gib", "8"])
    out = capsys.readouterr().out
    for part in ("weights", "gradients", "optimizer state", "activations", "logits", "fits on a 8 GiB GPU"):
        assert part in out


def test_bad_input_is_one_line_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 64}))
    with pytest.raises(CookbookInputError, match="not supported"):
        plan(str(tmp_path), "full")
    with pytest.raises(CookbookInputError, match="technique"):
        plan(ModelShape.from_config(LlamaConfig(**SMALL)), "prefix-tuning")
    with pytest.raises(SystemExit):
        main(["--model", str(tmp_path / "missing"), "--technique", "full"])


def test_shipped_configs_give_the_published_parameter_counts(repo_root):
    # parameter counts from the models' hub pages (Qwen2.5 and Llama 3.x model cards)
    published = {"Qwen2.5-0.5B": 0.49, "Qwen2.5-1.5B": 1.54, "Llama-3.2-1B": 1.24, "Llama-3.2-3B": 3.21}
    published |= {"Qwen2.5-7B": 7.61, "Llama-3.1-8B": 8.03}
    for name, billions in published.items():
        shape = ModelShape.from_config(
            AutoConfig.from_pretrained(repo_root / "benchmarks/model_configs" / f"{name}.json")
        )
        assert shape.num_parameters() / 1e9 == pytest.approx(billions, abs=0.01), name
