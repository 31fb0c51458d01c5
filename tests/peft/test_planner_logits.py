"""The planner's logits row (the largest at 150k-token vocabularies) against bytes measured from the real tensors.

A dispatch mode sees every tensor a real transformers forward (and backward) allocates, and follows each new
storage until it is freed, keeping the peak of the bytes alive at once. Parameters, buffers and the inputs
existed before and are not counted. Run at two vocabulary sizes with everything else equal (a LoRA model, so the
vocabulary-sized embedding and output layer have no gradients), the difference of the peaks is what the
vocabulary costs: the logits and what the loss makes of them, for transformers' loss and for
cookbook.chunked_loss. The planner's own arithmetic is never restated.
"""

from __future__ import annotations

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from transformers import LlamaConfig

from cookbook.chunked_loss import chunked_causal_lm_loss
from cookbook.perf.memory_plan import ModelShape, plan
from cookbook.perf.technique_models import build_random_model

BATCH, LENGTH = 2, 32
VOCABULARIES = (32_000, 151_936)  # Llama-2's and Qwen2.5's


class PeakLiveBytes(TorchDispatchMode):
    """Peak bytes of the storages created while the mode is on, each counted from creation until it is freed."""

    def __init__(self, existing: list[torch.Tensor]):
        super().__init__()
        self.seen = {t.untyped_storage().data_ptr() for t in existing}
        self.live = self.peak = 0

    def _freed(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self.seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.seen:
                    self.seen.add(key)
                    self.live += storage.nbytes()
                    weakref.finalize(storage, self._freed, key, storage.nbytes())
        self.peak = max(self.peak, self.live)
        return out


def test_the_meter_sees_allocations_and_frees():
    weight = torch.randn(100, 1000, requires_grad=True)
    with PeakLiveBytes([weight]) as meter:
        x = torch.randn(10, 100)  # 4,000 bytes
        y = x @ weight  # 40,000 bytes; the product keeps x for backward
        z = torch.log_softmax(y, -1)  # 40,000 bytes, kept for backward
        assert meter.live == 84_000
        del y  # freed: log_softmax keeps its output, not its input
        assert meter.live == 44_000
        z.sum().backward()
    assert meter.peak >= 44_000 + 400_000  # weight.grad on top of what backward holds


def small_config(vocab_size: int) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        tie_word_embeddings=False,
    )


def measured_peaks(vocab_size: int, dtype: torch.dtype, chunk_tokens: int | None = None) -> tuple[int, int]:
    """(peak bytes during the forward with its loss, peak bytes over forward and backward) of one training step
    as the Trainer takes it: only the loss is kept from the model's output. `chunk_tokens`: the loss is
    cookbook.chunked_loss's, that many tokens at a time."""
    model = build_random_model(small_config(vocab_size), "lora", dtype, lora_rank=4, lora_alpha=4)
    model.train()
    ids = torch.randint(0, vocab_size, (BATCH, LENGTH), generator=torch.Generator().manual_seed(0))
    with PeakLiveBytes([*model.parameters(), *model.buffers(), ids]) as meter:
        if chunk_tokens is None:
            loss = model(input_ids=ids, labels=ids).loss
        else:
            loss = chunked_causal_lm_loss(model, dict(input_ids=ids, labels=ids), chunk_tokens=chunk_tokens)
        forward = meter.peak
        loss.backward()
    return forward, meter.peak


def planned_logits(vocab_size: int, dtype: str, **options) -> int:
    shape = ModelShape.from_config(small_config(vocab_size))
    return plan(shape, "lora", batch_size=BATCH, seq_len=LENGTH, dtype=dtype, **options).logits


DTYPES = [(torch.bfloat16, "bf16"), (torch.float32, "fp32")]
CHUNK = 16  # of BATCH x LENGTH = 64 tokens


def vocabulary_cost(dtype: torch.dtype, name: str, chunk_tokens: int | None = None) -> tuple[int, int, int]:
    """(measured forward, measured step, planned) bytes the larger vocabulary adds."""
    (forward_small, step_small), (forward_large, step_large) = (
        measured_peaks(v, dtype, chunk_tokens) for v in VOCABULARIES
    )
    options = {} if chunk_tokens is None else dict(loss="chunked", chunk_tokens=chunk_tokens)
    planned = planned_logits(VOCABULARIES[1], name, **options) - planned_logits(VOCABULARIES[0], name, **options)
    return forward_large - forward_small, step_large - step_small, planned


@pytest.fixture(scope="module")
def vocabulary_costs():
    """{(dtype name, loss): (measured forward, measured step, planned)}."""
    torch.set_num_threads(1)
    costs = {}
    for dtype, name in DTYPES:
        costs[name, "standard"] = vocabulary_cost(dtype, name)
        costs[name, "chunked"] = vocabulary_cost(dtype, name, CHUNK)
    return costs


@pytest.mark.parametrize("loss", ["standard", "chunked"])
@pytest.mark.parametrize("dtype", ["bf16", "fp32"])
def test_logits_term_is_the_measured_training_step_peak(vocabulary_costs, dtype, loss):
    """What "will it fit" needs: the step's peak, which is reached in the loss's backward (the kept fp32
    log-probabilities, their gradient and the logits' gradient: 12 bytes per logit), not in the forward (the
    logits, the loss's fp32 copy and the log-probabilities: 10 bytes in bf16, 8 in fp32). With the chunked loss
    the same holds for one chunk, recomputed in the backward pass."""
    forward, step, planned = vocabulary_costs[dtype, loss]
    assert planned > 0
    assert step == pytest.approx(planned, rel=0.01), f"measured {step:,} bytes over the step, planned {planned:,}"
    assert forward < 0.9 * step, f"the forward ({forward:,} bytes) is not below the backward ({step:,})"


def test_chunked_loss_term_is_one_chunk_of_the_standard_term(vocabulary_costs):
    """The chunked loss's peak is one chunk's: measured and planned, a CHUNK-token share of the standard one."""
    for name in ("bf16", "fp32"):
        _, step_standard, planned_standard = vocabulary_costs[name, "standard"]
        _, step_chunked, planned_chunked = vocabulary_costs[name, "chunked"]
        share = CHUNK / (BATCH * LENGTH)
        assert planned_chunked == pytest.approx(share * planned_standard, rel=1e-9)
        assert step_chunked == pytest.approx(share * step_standard, rel=0.05), name
