"""Will it fit? A memory plan for fine-tuning a dense decoder (Llama, Mistral, Qwen2, Qwen3 style).

The plan reads only the model's config (a local folder, a config.json, or a hub id) and counts:

- precision: `dtype` bf16/fp16/fp32 is the dtype the model is loaded and trained in; `bf16-mixed` is what
  `Trainer(bf16=True)` does with an fp32 model: fp32 weights, gradients and AdamW state, the forward in
  bf16 autocast (activations and logits as autocast produces them, plus the bf16 copies autocast makes
  of the weights it multiplies, kept for backward);
- FSDP: `gpus > 1` shards weights, gradients and optimizer state over the GPUs (full shard, full
  fine-tuning); each GPU keeps its own activations and logits, plus the all-gathered weights of the
  units being computed;
- weights: every parameter tensor, counted analytically from the config; QLoRA stores the decoder's
  linear layers in 4-bit NF4 with double quantisation (bitsandbytes Params4bit: packed bytes, uint8
  absmax per 64 values, fp32 absmax per 256 of those, and the two small code books);
- gradients: one per trainable value, in the trainable parameter's dtype;
- optimizer state: torch AdamW keeps two moments in the parameter's dtype (+ a 4-byte step per
  tensor); bitsandbytes 8-bit AdamW keeps two uint8 moments, an fp32 absmax per 256 values and two
  256-entry code books per tensor, and fp32 moments for tensors under 4096 values;
- activations: bytes autograd keeps for the backward pass, per token and per layer. The coefficients
  below were measured on CPU with `torch.autograd.graph.saved_tensors_hooks` (see
  `saved_activation_bytes`) and fitted exactly (zero residual) over several shapes. They assume SDPA or
  FlashAttention, which keep no L x L attention matrix (eager attention does); with gradient
  checkpointing only each layer's input is kept, plus one layer's activations while it is recomputed;
- logits: the peak the batch's B x L x V logits reach over the training step. The forward holds the logits in
  the compute dtype, the fp32 copy the loss makes (none when the compute dtype is fp32) and the fp32
  log-probabilities it keeps for backward: 10 bytes per logit in bf16, 8 in fp32. The loss's backward holds
  more: the kept fp32 log-probabilities, their fp32 gradient and the fp32 gradient of the logits, 12 bytes per
  logit in every dtype, while every activation is still alive. The plan counts the larger, 12 bytes
  (measured from the real tensors in tests/peft/test_planner_logits.py). With `loss="chunked"` (a fused or
  chunked linear cross-entropy: Liger's `use_liger_kernel=True` on CUDA, or `cookbook.chunked_loss`
  anywhere) the full B x L x V logits never exist: one chunk of `chunk_tokens` tokens is computed, reduced
  to its loss and freed, and recomputed in the backward pass, where that chunk reaches the same 12 bytes per
  logit. DPO counts the logits of the chosen and the rejected sequences, GRPO those of the completions;
  both with the same bytes per logit, an assumption: TRL computes their per-token log-probabilities with its
  own log-softmax, not with this loss, and only this loss is measured;
- objectives: `sft` trains on batch x seq_len tokens. `dpo` runs the chosen and the rejected sequence of each
  pair in one forward (2 x batch sequences) and needs the reference model: a second frozen copy of the
  weights for full fine-tuning, none for LoRA/QLoRA (the reference is the base model with the adapter
  disabled). `grpo` trains on batch completions of seq_len tokens (prompt + completion) and also generates
  them: the generation's KV cache (batch x seq_len keys and values in every layer) is alive while the
  training step's activations are not, so the plan counts the larger of the two; with `beta > 0` the
  reference model is counted as for DPO.

Static parts (weights, gradients, optimizer state) match bytes counted from real tensors after one
optimizer step (tests/peft/test_memory_plan.py). Activations and logits are checked on CPU against autograd's
saved tensors; the check against `torch.cuda.max_memory_allocated` on a GPU is
`benchmarks/check_planner_gpu.py`.

Command line: `python -m cookbook.perf.memory_plan --model Qwen/Qwen2.5-0.5B --technique lora --batch-size 8
--seq-len 1024 --gpu-gib 24` (or `pixi run plan ...`).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from cookbook.errors import CookbookInputError

GIB = 1024**3
TECHNIQUES = ("full", "lora", "qlora")
OBJECTIVES = ("sft", "dpo", "grpo")
LOSSES = ("standard", "chunked")
CHUNK_TOKENS = 1024  # tokens per chunk of the chunked cross-entropy (cookbook.chunked_loss's default)
OPTIMIZERS = ("adamw", "adamw-8bit", "paged-adamw-8bit")
DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
# Mixed precision: parameter (master) bytes and the bytes autocast computes in.
MIXED = {"bf16-mixed": (4, 2)}
DTYPES = (*DTYPE_BYTES, *MIXED)
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")

# Saved-for-backward bytes per token for one decoder layer: coefficients of
# (hidden, intermediate, kv_dim = kv_heads * head_dim, attention heads, LoRA rank summed over adapted
# linear layers, 1). Keyed by (technique, bytes of the model dtype, or the mixed-precision name). Measured
# with saved_activation_bytes() on CPU, SDPA attention; the fit has zero residual over 7 shapes (bf16-mixed:
# 11 shapes under torch.autocast("cpu", torch.bfloat16), the autocast weight copies subtracted first; its
# residual stream stays fp32, so layer inputs are 4 bytes per value).
LAYER_COEFFICIENTS = {
    ("full", 2): (20, 8, 4, 4, 0, 8),
    ("full", "bf16-mixed"): (30, 8, 4, 4, 0, 8),
    ("full", 4): (32, 16, 8, 4, 0, 8),
    ("lora", 2): (36, 10, 4, 4, 4, 8),
    ("lora", 4): (24, 16, 8, 4, 4, 8),
    ("qlora", 2): (36, 10, 4, 4, 4, 8),
}
# Outside the layers (embedding output, final norm, rotary cos/sin) per token: coefficients of (hidden, head_dim).
OUTSIDE_COEFFICIENTS = {
    ("full", 2): (8.5, 0),
    ("full", 4): (13, 0),
    ("full", "bf16-mixed"): (10, 4),
    ("lora", 2): (0.5, 0),
    ("lora", 4): (1, 0),
    ("qlora", 2): (0.5, 0),
}


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a dense decoder config that decide its memory."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    tied_embeddings: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False

    @classmethod
    def from_config(cls, config) -> ModelShape:
        model_type = getattr(config, "model_type", "")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise CookbookInputError(
                f"model_type {model_type!r} is not supported by the memory planner: it handles dense decoders "
                f"({', '.join(SUPPORTED_MODEL_TYPES)})"
            )
        heads = config.num_attention_heads
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
        attention_bias = bool(getattr(config, "attention_bias", False))
        return cls(
            vocab_size=config.vocab_size,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_layers=config.num_hidden_layers,
            num_heads=heads,
            num_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
            head_dim=head_dim,
            tied_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
            qkv_bias=model_type == "qwen2" or attention_bias,
            o_bias=attention_bias,
            mlp_bias=bool(getattr(config, "mlp_bias", False)),
            qk_norm=model_type == "qwen3",
        )

    def linear_layers(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer in one decoder layer."""
        h, q, kv, i = (
            self.hidden_size,
            self.num_heads * self.head_dim,
            self.num_kv_heads * self.head_dim,
            self.intermediate_size,
        )
        return {
            "q_proj": (h, q),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (q, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }

    def tensors(self) -> list[tuple[str, int, bool]]:
        """Every parameter tensor as (kind, number of values, is a decoder linear weight)."""
        h = self.hidden_size
        out = [("embedding", self.vocab_size * h, False)]
        biases = {"q_proj": self.qkv_bias, "k_proj": self.qkv_bias, "v_proj": self.qkv_bias, "o_proj": self.o_bias}
        biases |= dict.fromkeys(("gate_proj", "up_proj", "down_proj"), self.mlp_bias)
        for _ in range(self.num_layers):
            for name, (fan_in, fan_out) in self.linear_layers().items():
                out.append((name, fan_in * fan_out, True))
                if biases[name]:
                    out.append((f"{name}.bias", fan_out, False))
            out += [("norm", h, False), ("norm", h, False)]
            if self.qk_norm:
                out += [("qk_norm", self.head_dim, False), ("qk_norm", self.head_dim, False)]
        out.append(("norm", h, False))
        if not self.tied_embeddings:
            out.append(("lm_head", self.vocab_size * h, False))
        return out

    def num_parameters(self) -> int:
        return sum(n for _, n, _ in self.tensors())

    def root_parameters(self) -> int:
        """Parameters outside the decoder layers: embedding, final norm, untied output layer."""
        head = 0 if self.tied_embeddings else self.vocab_size * self.hidden_size
        return self.vocab_size * self.hidden_size + self.hidden_size + head


def params4bit_bytes(numel: int, blocksize: int = 64, nested_blocksize: int = 256) -> int:
    """Bytes of one NF4 weight with double quantisation, as bitsandbytes stores it."""
    blocks = math.ceil(numel / blocksize)
    packed = math.ceil(numel / 2)
    absmax = blocks  # uint8, itself quantised
    nested_absmax = math.ceil(blocks / nested_blocksize) * 4  # fp32
    codes = 256 * 4 + 16 * 4 + 4  # nested code book, NF4 code book, fp32 offset
    return packed + absmax + nested_absmax + codes


def optimizer_bytes(numel: int, param_bytes: int, optimizer: str) -> int:
    """AdamW state for one trainable tensor."""
    if optimizer == "adamw":
        return 2 * numel * param_bytes + 4  # exp_avg, exp_avg_sq in the parameter dtype, fp32 step
    if numel < 4096:  # bitsandbytes keeps small tensors in 32-bit state
        return 2 * numel * 4
    return 2 * numel + 2 * 256 * 4 + 2 * math.ceil(numel / 256) * 4


@dataclass
class MemoryPlan:
    model: str
    technique: str
    optimizer: str
    batch_size: int
    seq_len: int
    gradient_checkpointing: bool
    dtype: str
    parameters: int
    trainable_parameters: int
    weights: int
    gradients: int
    optimizer_state: int
    activations: int
    logits: int
    weight_copies: int = 0
    gpus: int = 1
    objective: str = "sft"
    loss: str = "standard"
    reference_weights: int = 0
    kv_cache: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def static(self) -> int:
        return self.weights + self.gradients + self.optimizer_state

    @property
    def total(self) -> int:
        """Bytes per GPU."""
        return (
            self.static
            + self.weight_copies
            + self.reference_weights
            + max(self.activations + self.logits, self.kv_cache)
        )

    def fits(self, gpu_gib: float, reserve_gib: float = 1.0, headroom: float = 0.10) -> bool:
        """True if the plan fits a GPU of `gpu_gib`, keeping `reserve_gib` for the CUDA context and
        kernels' workspaces and `headroom` of the rest for allocator fragmentation."""
        return self.total <= (gpu_gib - reserve_gib) * GIB * (1 - headroom)

    def rows(self) -> list[tuple[str, int]]:
        copies = [("gathered weights" if self.gpus > 1 else "weight copies", self.weight_copies)]
        return [
            ("weights", self.weights),
            ("gradients", self.gradients),
            ("optimizer state", self.optimizer_state),
            *(copies if self.weight_copies else []),
            *([("reference model", self.reference_weights)] if self.reference_weights else []),
            ("activations", self.activations),
            ("logits", self.logits),
            *([("KV cache (generation)", self.kv_cache)] if self.objective == "grpo" else []),
            ("total", self.total),
        ]

    def report(self, gpu_gib: float | None = None) -> str:
        checkpointing = "on" if self.gradient_checkpointing else "off"
        lines = [
            f"{self.model}: {self.technique}"
            + (f" {self.objective.upper()}" if self.objective != "sft" else "")
            + f", {self.optimizer}, {self.dtype}, batch {self.batch_size} x {self.seq_len} "
            f"tokens, gradient checkpointing {checkpointing}"
            + (", chunked cross-entropy" if self.loss == "chunked" else "")
            + (f", FSDP over {self.gpus} GPUs (per GPU)" if self.gpus > 1 else ""),
            f"parameters {self.parameters / 1e6:,.1f} M, trainable {self.trainable_parameters / 1e6:,.2f} M",
        ]
        lines += [f"  {name:<16} {value / GIB:9.2f} GiB" for name, value in self.rows()]
        if gpu_gib is not None:
            verdict = "fits" if self.fits(gpu_gib) else "does NOT fit"
            lines.append(f"{verdict} on a {gpu_gib:g} GiB GPU (1 GiB reserved for CUDA, 10% headroom)")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


def load_shape(model: str) -> ModelShape:
    """The shape of a model from its config: a folder, a config.json path, or a hub id (no remote code)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(model, trust_remote_code=False)
    except (OSError, ValueError) as error:
        raise CookbookInputError(
            f"could not read a config for {model!r} ({type(error).__name__}): pass a hub id, a model folder or a "
            "config.json path"
        ) from error
    return ModelShape.from_config(config)


def plan(
    shape: ModelShape | str,
    technique: str = "lora",
    batch_size: int = 1,
    seq_len: int = 1024,
    gradient_checkpointing: bool = False,
    optimizer: str = "adamw",
    dtype: str = "bf16",
    lora_rank: int = 16,
    lora_targets: tuple[str, ...] = ALL_LINEAR,
    adapter_dtype: str = "fp32",
    gpus: int = 1,
    objective: str = "sft",
    loss: str = "standard",
    chunk_tokens: int = CHUNK_TOKENS,
    beta: float = 0.0,
    completion_len: int | None = None,
) -> MemoryPlan:
    """The memory plan for training `shape` (a ModelShape, or anything `load_shape` accepts), per GPU.

    `dtype` is the dtype the model is loaded and trained in (bf16 on a GPU in the PEFT recipes), or
    `bf16-mixed`: an fp32 model trained under bf16 autocast (`Trainer(bf16=True)`, 01-Full-Fine-Tuning).
    LoRA adapters are fp32 by default, as PEFT upcasts them (`autocast_adapter_dtype=True`).
    `gpus` > 1: FSDP full shard (ZeRO-3) of weights, gradients and optimizer state over that many GPUs,
    each running `batch_size` sequences.
    `objective` sft/dpo/grpo and `loss` standard/chunked: see the module docstring. `beta` is GRPO's KL
    coefficient (a reference model only when > 0; DPO always has one); `completion_len` is the GRPO
    completion part of `seq_len` (TRL computes logits for the completion tokens only; default: all of it).
    """
    name = shape if isinstance(shape, str) else "model"
    if isinstance(shape, str):
        shape = load_shape(shape)
    if technique not in TECHNIQUES:
        raise CookbookInputError(f"technique {technique!r} is unknown: use one of {', '.join(TECHNIQUES)}")
    if optimizer not in OPTIMIZERS:
        raise CookbookInputError(f"optimizer {optimizer!r} is unknown: use one of {', '.join(OPTIMIZERS)}")
    if dtype not in DTYPES or adapter_dtype not in DTYPE_BYTES:
        raise CookbookInputError(f"dtype must be one of {', '.join(DTYPES)}")
    if dtype in MIXED and technique != "full":
        raise CookbookInputError(f"dtype {dtype} is modelled for full fine-tuning: use bf16 for {technique}")
    if objective not in OBJECTIVES:
        raise CookbookInputError(f"objective {objective!r} is unknown: use one of {', '.join(OBJECTIVES)}")
    if loss not in LOSSES:
        raise CookbookInputError(f"loss {loss!r} is unknown: use one of {', '.join(LOSSES)}")
    if completion_len is not None and not (objective == "grpo" and 1 <= completion_len <= seq_len):
        raise CookbookInputError("completion_len is for --objective grpo, between 1 and the sequence length")
    if chunk_tokens < 1:
        raise CookbookInputError("chunk_tokens must be at least 1")
    if gpus < 1:
        raise CookbookInputError("gpus must be at least 1")
    if gpus > 1 and technique != "full":
        raise CookbookInputError("--gpus (FSDP sharding) is modelled for full fine-tuning only: use --gpus 1")
    if batch_size < 1 or seq_len < 1:
        raise CookbookInputError("batch size and sequence length must be at least 1")
    unknown = set(lora_targets) - set(ALL_LINEAR)
    if unknown:
        raise CookbookInputError(
            f"unknown LoRA target modules {sorted(unknown)}: use names from {', '.join(ALL_LINEAR)}"
        )
    if technique == "qlora" and dtype == "fp32":
        raise CookbookInputError("QLoRA computes in bf16 or fp16: use dtype bf16 or fp16")

    size, compute = MIXED.get(dtype, (DTYPE_BYTES.get(dtype), DTYPE_BYTES.get(dtype)))
    notes = []
    weights = trainable = grads = optim = 0
    for _kind, numel, is_linear in shape.tensors():
        if technique == "qlora" and is_linear:
            weights += params4bit_bytes(numel)
        else:
            weights += numel * size
        if technique == "full":
            trainable += numel
            grads += numel * size
            optim += optimizer_bytes(numel, size, optimizer)
    rank_sum = 0
    if technique in ("lora", "qlora"):
        adapter = DTYPE_BYTES[adapter_dtype]
        for _ in range(shape.num_layers):
            for target in lora_targets:
                fan_in, fan_out = shape.linear_layers()[target]
                rank_sum += lora_rank
                for numel in (lora_rank * fan_in, fan_out * lora_rank):  # lora_A, lora_B
                    trainable += numel
                    weights += numel * adapter
                    grads += numel * adapter
                    optim += optimizer_bytes(numel, adapter, optimizer)
        rank_sum //= shape.num_layers

    sequences = 2 * batch_size if objective == "dpo" else batch_size  # DPO: chosen and rejected together
    tokens = sequences * seq_len
    key = (technique, dtype if dtype in MIXED else size)
    if key not in LAYER_COEFFICIENTS:
        raise CookbookInputError(f"no activation coefficients for {technique} in {dtype}")
    c_h, c_i, c_kv, c_a, c_r, c_0 = LAYER_COEFFICIENTS[key]
    per_layer = (
        c_h * shape.hidden_size
        + c_i * shape.intermediate_size
        + c_kv * shape.num_kv_heads * shape.head_dim
        + c_a * shape.num_heads
        + c_r * rank_sum
        + c_0
    )
    c_out_h, c_out_hd = OUTSIDE_COEFFICIENTS[key]
    outside = c_out_h * shape.hidden_size + c_out_hd * shape.head_dim
    if gradient_checkpointing:
        # each layer's input (the residual stream: fp32 under autocast) is kept; one layer's activations
        # exist again while it is recomputed
        per_token = shape.num_layers * size * shape.hidden_size + per_layer + outside
    else:
        per_token = shape.num_layers * per_layer + outside
    activations = int(tokens * per_token)
    # forward: logits in the compute dtype, the loss's fp32 copy (not when already fp32), fp32 log-probabilities;
    # the loss's backward: the kept log-probabilities, their gradient and the logits' gradient, all fp32
    forward_logit_bytes = compute + (4 if compute < 4 else 0) + 4
    backward_logit_bytes = 3 * 4
    logit_bytes = max(forward_logit_bytes, backward_logit_bytes)
    logit_tokens = sequences * (completion_len or seq_len)
    if loss == "chunked":
        logits = min(logit_tokens, chunk_tokens) * shape.vocab_size * logit_bytes
        notes.append(
            f"chunked cross-entropy: logits of {min(logit_tokens, chunk_tokens)} tokens at a time, recomputed in backward"
        )
    else:
        logits = logit_tokens * shape.vocab_size * logit_bytes
    reference = 0
    if objective == "dpo" or (objective == "grpo" and beta > 0):
        if technique == "full":
            reference = shape.num_parameters() * size
            notes.append(f"{objective.upper()}: a frozen reference copy of the model, loaded like the policy")
        else:
            notes.append(f"{objective.upper()}: the reference is the base model with the adapter disabled (no copy)")
    kv_cache = 0
    if objective == "grpo":
        kv_cache = batch_size * seq_len * shape.num_layers * 2 * shape.num_kv_heads * shape.head_dim * compute
        notes.append("GRPO: generation (KV cache) and the training step are not alive together; the larger counts")
    matmul_weights = sum(n for kind, n, is_linear in shape.tensors() if is_linear or kind == "lm_head")
    if shape.tied_embeddings:
        matmul_weights += shape.vocab_size * shape.hidden_size  # the output layer multiplies by the embedding
    weight_copies = 0
    if gpus > 1:
        # FSDP2, one unit per decoder layer: a shard of everything, plus the unsharded (all-gathered) weights of
        # the root unit (embedding, final norm, output layer: gathered for the whole forward) and of two decoder
        # layers (the one computing and the one prefetched), in the compute dtype.
        weights, grads, optim = (math.ceil(part / gpus) for part in (weights, grads, optim))
        per_layer_params = (shape.num_parameters() - shape.root_parameters()) // shape.num_layers
        weight_copies = compute * (shape.root_parameters() + 2 * per_layer_params)
        notes.append(
            "FSDP: per GPU; the gathered weights assume reshard-after-forward and one prefetched layer; "
            "gradients of a layer before reduce-scatter and communication buffers are not counted"
        )
    elif dtype in MIXED:
        # autocast casts every fp32 weight it multiplies to bf16 and keeps the copy for backward
        weight_copies = compute * matmul_weights
        notes.append("bf16-mixed: fp32 weights, gradients and AdamW state; bf16 copies of the matmul weights")
    if optimizer == "paged-adamw-8bit":
        notes.append("paged optimizer state lives in CUDA unified memory and can be evicted to CPU RAM under pressure")
    if gradient_checkpointing and technique == "full":
        notes.append("gradient checkpointing recomputes each layer's forward: about 30% more compute per step")
    return MemoryPlan(
        model=name,
        technique=technique,
        optimizer=optimizer,
        batch_size=batch_size,
        seq_len=seq_len,
        gradient_checkpointing=gradient_checkpointing,
        dtype=dtype,
        parameters=shape.num_parameters(),
        trainable_parameters=trainable,
        weights=weights,
        gradients=grads,
        optimizer_state=optim,
        activations=activations,
        logits=logits,
        weight_copies=weight_copies,
        gpus=gpus,
        objective=objective,
        loss=loss,
        reference_weights=reference,
        kv_cache=kv_cache,
        notes=notes,
    )


def max_seq_len(gpu_gib: float, shape: ModelShape | str, limit: int = 1 << 20, **options) -> int:
    """The longest sequence that fits a GPU of `gpu_gib` with `plan(shape, seq_len=..., **options)`;
    0 if not even one token fits. Memory grows with the sequence length, so a bisection finds it."""
    if isinstance(shape, str):
        shape = load_shape(shape)
    shortest = options.get("completion_len") or 1
    if not plan(shape, seq_len=shortest, **options).fits(gpu_gib):
        return 0
    low, high = shortest, limit  # fits(low) holds; search the largest length that fits
    if plan(shape, seq_len=high, **options).fits(gpu_gib):
        return high
    while high - low > 1:
        middle = (low + high) // 2
        if plan(shape, seq_len=middle, **options).fits(gpu_gib):
            low = middle
        else:
            high = middle
    return low


def saved_activation_bytes(model, **inputs) -> tuple[int, object]:
    """Run a training forward pass and count the bytes autograd keeps for backward (each storage once,
    parameters excluded). Returns (bytes, model output). This is what `LAYER_COEFFICIENTS` were fitted to."""
    import torch

    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in params:
            seen[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        output = model(**inputs)
    return sum(seen.values()), output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m cookbook.perf.memory_plan",
        description="Memory needed to fine-tune a model, and whether it fits.",
    )
    parser.add_argument("--model", required=True, help="hub id, model folder or config.json path")
    parser.add_argument("--technique", choices=TECHNIQUES, default="lora")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default="bf16",
        help="dtype the model is loaded and trained in; bf16-mixed: fp32 model under bf16 autocast (Trainer bf16=True)",
    )
    parser.add_argument("--gpus", type=int, default=1, help="FSDP full shard over this many GPUs (full fine-tuning)")
    parser.add_argument("--lora-rank", type=int, default=16)
    parser.add_argument(
        "--objective", choices=OBJECTIVES, default="sft", help="dpo: chosen + rejected + reference; grpo: + generation"
    )
    parser.add_argument(
        "--completion-len", type=int, default=None, help="GRPO: completion tokens of --seq-len (logits are theirs only)"
    )
    parser.add_argument("--beta", type=float, default=0.0, help="GRPO KL coefficient: > 0 adds the reference model")
    parser.add_argument(
        "--loss",
        choices=LOSSES,
        default="standard",
        help="chunked: fused/chunked linear cross-entropy (use_liger_kernel=True, or cookbook.chunked_loss)",
    )
    parser.add_argument("--gpu-gib", type=float, default=None, help="GPU memory in GiB, e.g. 24 or 80")
    parser.add_argument(
        "--max-seq-len", action="store_true", help="print the longest sequence that fits --gpu-gib (--seq-len ignored)"
    )
    args = parser.parse_args(argv)
    options = dict(
        technique=args.technique,
        batch_size=args.batch_size,
        gradient_checkpointing=args.gradient_checkpointing,
        optimizer=args.optimizer,
        dtype=args.dtype,
        lora_rank=args.lora_rank,
        gpus=args.gpus,
        objective=args.objective,
        loss=args.loss,
        beta=args.beta,
        completion_len=args.completion_len,
    )
    try:
        if args.max_seq_len:
            if args.gpu_gib is None:
                raise CookbookInputError("--max-seq-len needs --gpu-gib: the GPU memory to fit, e.g. --gpu-gib 24")
            shape = load_shape(args.model)
            longest = max_seq_len(args.gpu_gib, shape, **options)
            if not longest:
                print(f"nothing fits a {args.gpu_gib:g} GiB GPU at batch {args.batch_size}: not even one token")
                return
            result = plan(shape, seq_len=longest, **options)
            result.model = args.model
            print(result.report(args.gpu_gib))
            print(f"longest sequence that fits: {longest} tokens")
            return
        result = plan(args.model, seq_len=args.seq_len, **options)
    except CookbookInputError as error:
        parser.exit(2, f"error: {error}\n")
    print(result.report(args.gpu_gib))


if __name__ == "__main__":
    main()
