"""A bare training loop that measures as it goes, for comparing methods on equal terms.

`measure_steps` runs a few optimizer steps and returns the loss log (in the Trainer's `log_history`
format, so `RunRecorder.record_training` takes it), the parameter/gradient/optimizer-state bytes
counted from the tensors right after the last backward pass and step, and the CUDA allocator peak
where there is a GPU (there is no honest per-run peak on CPU: the process RSS only ever grows).
"""

from __future__ import annotations

import itertools
import time

import torch

from cookbook.perf.tensor_bytes import gradient_bytes, optimizer_state_bytes, parameter_bytes, trainable_parameter_count


def _to(batch: dict, device) -> dict:
    return {key: value.to(device) for key, value in batch.items()}


@torch.no_grad()
def mean_loss(model, batches) -> float:
    """Mean of the model's loss over `batches` (an iterable of dicts with labels), in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    losses = [model(**_to(batch, device)).loss.item() for batch in batches]
    if not losses:
        raise ValueError("no batches to evaluate: the eval split is empty")
    return sum(losses) / len(losses)


def measure_steps(model, optimizer, batches, steps: int) -> dict:
    """Train for `steps` optimizer steps (cycling `batches`) and measure the memory that training holds."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    device = next(model.parameters()).device
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    model.train()
    log, tokens, grads = [], 0, 0
    started = time.perf_counter()
    for step, batch in zip(range(1, steps + 1), itertools.cycle(batches), strict=False):
        batch = _to(batch, device)
        loss = model(**batch).loss
        loss.backward()
        grads = gradient_bytes(model)  # the moment gradients are largest: all present, none freed
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += (
            int(batch["attention_mask"].sum()) if "attention_mask" in batch else next(iter(batch.values())).numel()
        )
        log.append({"step": step, "loss": loss.item()})
    seconds = time.perf_counter() - started
    counted = {
        "trainable_parameters": trainable_parameter_count(model),
        "parameter_bytes": parameter_bytes(model),
        "gradient_bytes": grads,
        "optimizer_state_bytes": optimizer_state_bytes(optimizer),
    }
    counted["counted_total_bytes"] = (
        counted["parameter_bytes"] + counted["gradient_bytes"] + counted["optimizer_state_bytes"]
    )
    counted["cuda_peak_bytes"] = float(torch.cuda.max_memory_allocated()) if cuda else None
    return {"log_history": log, "seconds": seconds, "tokens": tokens, "seconds_per_step": seconds / steps, **counted}
