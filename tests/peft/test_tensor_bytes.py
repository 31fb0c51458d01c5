import pytest
import torch
from torch import nn

from cookbook.perf.tensor_bytes import parameter_bytes, training_bytes


def test_counts_match_adamw_on_a_linear_layer():
    model = nn.Linear(10, 4)  # 44 fp32 parameters
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(3, 10)).sum().backward()
    optimizer.step()
    counted = training_bytes(model, optimizer)
    assert counted["parameter_bytes"] == 44 * 4
    assert counted["gradient_bytes"] == 44 * 4
    # two fp32 moments per value plus a scalar step tensor per parameter tensor
    assert counted["optimizer_state_bytes"] == 2 * 44 * 4 + 2 * 4
    assert counted["trainable_parameters"] == 44
    assert counted["total_bytes"] == 176 + 176 + 360


def test_frozen_parameters_have_no_gradient_or_state():
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 2))
    model[0].requires_grad_(False)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    model(torch.randn(2, 8)).sum().backward()
    optimizer.step()
    counted = training_bytes(model, optimizer)
    assert counted["trainable_parameters"] == 18
    assert counted["gradient_bytes"] == 18 * 4


def test_bf16_parameters_take_two_bytes():
    assert parameter_bytes(nn.Linear(16, 16, bias=False).to(torch.bfloat16)) == 16 * 16 * 2


def test_4bit_weights_count_about_half_a_byte_each():
    bnb = pytest.importorskip("bitsandbytes")
    layer = bnb.nn.Linear4bit(256, 256, bias=False, quant_type="nf4", compress_statistics=True)
    layer.weight = bnb.nn.Params4bit(
        torch.randn(256, 256), requires_grad=False, quant_type="nf4", compress_statistics=True
    )
    layer.weight._quantize("cpu")
    per_weight = parameter_bytes(layer) / (256 * 256)
    assert 0.5 <= per_weight < 0.6


def test_measure_steps_trains_and_counts():
    from cookbook.perf.measure_training import mean_loss, measure_steps

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))

    class Wrapped(nn.Module):  # the (**batch).loss interface of a transformers model
        def __init__(self):
            super().__init__()
            self.net = model

        def forward(self, x, y):
            return type("Out", (), {"loss": nn.functional.mse_loss(self.net(x), y)})()

    wrapped = Wrapped()
    x = torch.randn(32, 4)
    batches = [{"x": x, "y": x.sum(dim=1, keepdim=True)}]
    before = mean_loss(wrapped, batches)
    result = measure_steps(wrapped, torch.optim.AdamW(wrapped.parameters(), lr=1e-2), batches, steps=50)
    assert mean_loss(wrapped, batches) < 0.5 * before
    assert len(result["log_history"]) == 50 and result["log_history"][-1]["step"] == 50
    n = 4 * 8 + 8 + 8 + 1
    assert result["trainable_parameters"] == n
    assert result["gradient_bytes"] == 4 * n
    assert result["counted_total_bytes"] == 4 * n + 4 * n + result["optimizer_state_bytes"]
    assert result["cuda_peak_bytes"] is None
