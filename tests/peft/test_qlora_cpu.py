"""QLoRA on CPU after an evaluation: bitsandbytes' CPU inference repacking must not reach training.

This machine may lack AVX512-BF16, so the test turns bitsandbytes' detection on by hand
(`support_avx512bf16_for_cpu = True`), as it is on such CPUs, and runs the sequence the QLoRA notebook runs:
an evaluation pass (no gradients), then a training pass through a biased 4-bit layer.
"""

import pytest
import torch

bnb = pytest.importorskip("bitsandbytes")

from cookbook.qlora_cpu import keep_4bit_layers_trainable_on_cpu  # noqa: E402


def biased_4bit_layer() -> torch.nn.Module:
    torch.manual_seed(0)
    dense = torch.nn.Linear(64, 64, bias=True)  # Qwen2's q/k/v projections have biases like this
    layer = bnb.nn.Linear4bit(64, 64, bias=True, compute_dtype=torch.float32, quant_type="nf4")
    layer.load_state_dict(dense.state_dict())
    layer = layer.to("cpu")
    layer.weight.requires_grad_(False)
    layer.bias.requires_grad_(False)
    layer.support_avx512bf16_for_cpu = True  # bitsandbytes' detection on an AVX512-BF16 CPU
    return layer


def input_gradient(layer, x):
    x = x.clone().requires_grad_(True)
    layer.train()
    layer(x).pow(2).sum().backward()
    return x.grad


def evaluate(layer):
    layer.eval()
    with torch.no_grad():
        layer(torch.randn(3, 64))


def test_training_after_evaluation_keeps_the_gradients_of_a_biased_4bit_layer():
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    layer = biased_4bit_layer()
    expected = input_gradient(layer, x)
    model = torch.nn.Sequential(layer)
    assert keep_4bit_layers_trainable_on_cpu(model) == 1
    evaluate(layer)  # what trainer.evaluate() does before training
    assert not getattr(layer.weight.quant_state, "packing_format_for_cpu", False)
    torch.testing.assert_close(input_gradient(layer, x), expected)


def test_without_the_workaround_the_repacked_layer_trains_wrongly():
    """The upstream behaviour the workaround exists for: if this starts passing, bitsandbytes fixed it."""
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    layer = biased_4bit_layer()
    expected = input_gradient(layer, x)
    evaluate(layer)
    assert layer.weight.quant_state.packing_format_for_cpu
    assert not torch.allclose(input_gradient(layer, x), expected, atol=1e-3)


def test_an_already_repacked_layer_is_unpacked():
    x = torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    layer = biased_4bit_layer()
    expected = input_gradient(layer, x)
    evaluate(layer)
    assert layer.weight.quant_state.packing_format_for_cpu
    keep_4bit_layers_trainable_on_cpu(torch.nn.Sequential(layer))
    # the repacking stores the block scales in less precision, so unpacking is close, not exact: call the
    # workaround before the first evaluation, as the notebooks do
    torch.testing.assert_close(input_gradient(layer, x), expected, atol=2e-2, rtol=0)
