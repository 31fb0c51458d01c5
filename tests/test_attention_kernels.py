"""The attention kernel the recipes choose for packed batches gives the padded batch's loss and gradients, and
the chunked cross-entropy gives transformers' loss and gradients without the full logits (all on CPU)."""

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from cookbook.chunked_loss import chunked_causal_lm_loss, chunked_cross_entropy
from cookbook.errors import CookbookInputError
from cookbook.packing import SEGMENT_ATTENTION, choose_attention, packing_collator, padded_collator
from cookbook.perf.packing_layouts import variable_length_chats
from cookbook.smoke.tiny_model import train_tiny_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return train_tiny_tokenizer()


@pytest.fixture(scope="module")
def rows(tokenizer):
    rows = variable_length_chats(tokenizer, 5, median_tokens=40, max_tokens=100, seed=5)
    for row in rows:  # loss on the second half only, as an assistant-only mask leaves prompts at -100
        half = len(row["labels"]) // 2
        row["labels"] = [-100] * half + row["labels"][half:]
    return rows


# two layers, 4 query and 2 key-value heads of 16: small enough for CPU, grouped-query like the real models
SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4}


def tiny_model(tokenizer, attention="sdpa", tied=False):
    config = LlamaConfig(**SHAPE, num_key_value_heads=2, vocab_size=len(tokenizer), use_cache=False)
    config.pad_token_id, config.tie_word_embeddings = tokenizer.pad_token_id, tied
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config, attn_implementation=attention).train()


def test_choose_attention():
    cpu = choose_attention("cpu")
    assert (cpu.implementation, cpu.per_example) == (SEGMENT_ATTENTION, True)
    assert choose_attention("cpu", packed=False).implementation == "sdpa"
    assert not choose_attention("cuda", "sdpa").per_example  # plain SDPA: the whole packed row, no packing
    assert choose_attention("cuda", "flex_attention").per_example
    assert choose_attention("cuda", "kernels-community/flash-attn2").per_example
    assert "SDPA per packed example" in str(cpu)


def test_chosen_kernel_packed_equals_padded_loss_and_gradients(rows, tokenizer):
    padded_model = tiny_model(tokenizer)
    packed_model = tiny_model(tokenizer, choose_attention("cpu").implementation)
    padded_loss = padded_model(**padded_collator(tokenizer)(rows)).loss
    packed_loss = packed_model(**packing_collator()(rows)).loss
    assert packed_loss.item() == pytest.approx(padded_loss.item(), rel=1e-5)
    padded_loss.backward()
    packed_loss.backward()
    for (name, a), (_, b) in zip(padded_model.named_parameters(), packed_model.named_parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


@pytest.mark.parametrize(("tied", "lora", "chunk_tokens"), [(False, False, 7), (True, False, 64), (False, True, 1000)])
def test_chunked_loss_equals_the_model_loss_and_gradients(rows, tokenizer, tied, lora, chunk_tokens):
    models = [tiny_model(tokenizer, tied=tied) for _ in range(2)]
    if lora:  # peft is in the PEFT-using environments only (and in `default`, which CI runs)
        peft = pytest.importorskip("peft")
        LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model
        config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
        peft_models = []
        for model in models:
            torch.manual_seed(1)  # the same random adapter in both
            peft_models.append(get_peft_model(model, config))
        models = peft_models
    batch = padded_collator(tokenizer)(rows)
    reference = models[0](**batch).loss
    chunked = chunked_causal_lm_loss(models[1], batch, chunk_tokens=chunk_tokens)
    assert chunked.item() == pytest.approx(reference.item(), rel=1e-5)
    reference.backward()
    chunked.backward()
    pairs = zip(models[0].named_parameters(), models[1].named_parameters(), strict=True)
    grads = [(name, a.grad, b.grad) for (name, a), (_, b) in pairs if a.requires_grad]
    assert grads
    for name, a, b in grads:
        assert torch.allclose(a, b, atol=1e-6), name


def test_chunked_loss_divides_by_num_items_in_batch_and_rejects_bad_chunks():
    torch.manual_seed(0)
    hidden, weight = torch.randn(2, 5, 8), torch.randn(11, 8)
    labels = torch.randint(0, 11, (2, 5))
    logits = hidden @ weight.T
    summed = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), reduction="sum"
    )
    assert chunked_cross_entropy(hidden, weight, labels, 3, num_items_in_batch=20).item() == pytest.approx(
        summed.item() / 20, rel=1e-6
    )
    with pytest.raises(CookbookInputError, match="chunk_tokens"):
        chunked_cross_entropy(hidden, weight, labels, 0)
