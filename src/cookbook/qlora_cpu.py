"""QLoRA on CPU: keep bitsandbytes' 4-bit layers on their trainable code path.

Upstream cause (bitsandbytes 0.49-0.50, `Linear4bit.forward` and `matmul_4bit`): on a CPU with AVX512-BF16,
a forward pass in eval mode without gradients (`trainer.evaluate()`, `model.generate()`) repacks each 4-bit
weight into a CPU inference layout (`quant_state.packing_format_for_cpu`) and never unpacks it when training
resumes. `matmul_4bit` then takes its inference branch: `gemv_4bit`, which has no autograd kernel (gradients
to the layer's input are silently wrong), followed by `result += bias`, an in-place add that fails with "a
view of a leaf Variable that requires grad is being used in an in-place operation" in layers with a bias
(Qwen2's q/k/v, GPT-2's every layer). The smoke Llama has no biases, so it never showed.

Workaround: turn the repacking off on every 4-bit layer, and unpack any weight already repacked, before
training. Inference on CPU stays correct, only without the AVX512-BF16 fast path.
"""

from __future__ import annotations

from torch import nn


def keep_4bit_layers_trainable_on_cpu(model: nn.Module) -> int:
    """Disable bitsandbytes' CPU inference repacking on every 4-bit layer (undoing it where done); return how
    many layers were touched. A no-op for models without bitsandbytes layers."""
    try:
        from bitsandbytes.functional import _convert_weight_packed_for_cpu_inverse
        from bitsandbytes.nn import Linear4bit
    except ImportError:
        return 0
    touched = 0
    for module in model.modules():
        if not isinstance(module, Linear4bit):
            continue
        module.support_avx512bf16_for_cpu = False
        state = getattr(module.weight, "quant_state", None)
        if state is not None and getattr(state, "packing_format_for_cpu", False):
            module.weight.data, module.weight.quant_state = _convert_weight_packed_for_cpu_inverse(
                module.weight.data, state
            )
        touched += 1
    return touched
