"""Causal-LM cross-entropy without the full logits tensor: the output layer and the loss, a chunk at a time.

At a 128k-152k vocabulary the logits of a batch (tokens x vocabulary; at the step's peak, in the loss's
backward, the fp32 log-probabilities, their gradient and the logits' gradient) outweigh a small model's
weights: 8 x 1024 tokens of Qwen2.5-0.5B need 13.9 GiB of them (`pixi run plan`). This loss computes the logits of `chunk_tokens` tokens at a time,
reduces them to a summed loss and frees them; the backward pass recomputes each chunk
(`torch.utils.checkpoint`), so only one chunk's logits exist at once. It runs on any device (CPU
included) and gives the loss and gradients of transformers' own `ForCausalLMLoss`
(tests/test_chunked_loss.py).

On CUDA, Liger's fused linear cross-entropy does the same in Triton kernels (`use_liger_kernel=True` in
`TrainingArguments`, `SFTConfig` or `GRPOConfig`; needs the `liger-kernel` package and a GPU: Triton does
not run on CPU). The planner models both with `--loss chunked`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from cookbook.chat import IGNORE_INDEX
from cookbook.errors import CookbookInputError


def _chunk_loss(hidden: torch.Tensor, weight: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    logits = F.linear(hidden, weight).float()  # the loss upcasts, as transformers' ForCausalLMLoss does
    return F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="sum")


def chunked_cross_entropy(
    hidden_states: torch.Tensor,
    output_weight: torch.Tensor,
    labels: torch.Tensor,
    chunk_tokens: int = 1024,
    num_items_in_batch: int | torch.Tensor | None = None,
) -> torch.Tensor:
    """Next-token cross-entropy of `hidden_states @ output_weight.T` against `labels` (B x L, IGNORE_INDEX
    where no loss), `chunk_tokens` tokens at a time. The mean over labelled tokens, or the sum divided by
    `num_items_in_batch` when given (what `Trainer` passes under gradient accumulation)."""
    if chunk_tokens < 1:
        raise CookbookInputError("chunk_tokens must be at least 1: e.g. 1024")
    # shift: position t predicts label t + 1 (labels padded with IGNORE_INDEX, as ForCausalLMLoss does)
    targets = F.pad(labels, (0, 1), value=IGNORE_INDEX)[..., 1:].reshape(-1).to(hidden_states.device)
    flat = hidden_states.reshape(-1, hidden_states.shape[-1])
    total = hidden_states.new_zeros((), dtype=torch.float32)
    for start in range(0, flat.shape[0], chunk_tokens):
        chunk_targets = targets[start : start + chunk_tokens]
        if (chunk_targets == IGNORE_INDEX).all():
            continue
        total = total + checkpoint(
            _chunk_loss, flat[start : start + chunk_tokens], output_weight, chunk_targets, use_reentrant=False
        )
    if num_items_in_batch is None:
        num_items_in_batch = (targets != IGNORE_INDEX).sum()
    if isinstance(num_items_in_batch, torch.Tensor):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


def chunked_causal_lm_loss(model, inputs: dict, chunk_tokens: int = 1024, num_items_in_batch=None) -> torch.Tensor:
    """The loss `model(**inputs).loss` would give, without materialising the batch's logits: the decoder runs,
    then `chunked_cross_entropy` against the output layer's weight (tied or not; PEFT models included)."""
    inputs = dict(inputs)
    labels = inputs.pop("labels")
    decoder = model.get_decoder()
    hidden = decoder(**inputs)
    output = model.get_output_embeddings()
    if getattr(output, "bias", None) is not None:
        raise CookbookInputError("the output layer has a bias: chunked_cross_entropy handles weight-only heads")
    return chunked_cross_entropy(hidden.last_hidden_state, output.weight, labels, chunk_tokens, num_items_in_batch)
