import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from cookbook.errors import CookbookInputError
from cookbook.merging import check_merged_logits, dtype_spacing, max_logit_diff, merge_to_standalone, merge_tolerance


def tiny_llama(seed=0):
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
    )
    return LlamaForCausalLM(config).eval()


def adapted(seed=0):
    # init_lora_weights=False: B is random, not zero, so the adapter really changes the outputs
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    return get_peft_model(tiny_llama(seed), config)


BATCH = {"input_ids": torch.randint(0, 64, (2, 12), generator=torch.Generator().manual_seed(1))}


def test_adapter_changes_the_model():
    assert max_logit_diff(adapted(), tiny_llama(), BATCH) > 1e-3


def test_merged_model_reloaded_from_safetensors_matches_the_adapter(tmp_path):
    model = adapted()
    with torch.no_grad():
        expected = model(**BATCH).logits.clone()
    out = merge_to_standalone(model, tmp_path / "merged")
    assert list(out.glob("*.safetensors")) and not list(out.glob("*.bin"))
    reloaded = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True).eval()
    assert not any("lora" in name for name, _ in reloaded.named_parameters())
    with torch.no_grad():
        diff = (reloaded(**BATCH).logits - expected).abs().max().item()
    assert diff < merge_tolerance(torch.float32)


def test_saved_adapter_on_a_fresh_base_then_merged_matches(tmp_path):
    model = adapted()
    model.save_pretrained(tmp_path / "adapter")
    fresh = PeftModel.from_pretrained(tiny_llama(), tmp_path / "adapter")
    assert max_logit_diff(model, fresh, BATCH) < 1e-6
    merged = AutoModelForCausalLM.from_pretrained(merge_to_standalone(fresh, tmp_path / "merged"))
    assert max_logit_diff(model, merged, BATCH) < merge_tolerance(torch.float32)


def test_merging_into_a_quantized_base_is_refused(tmp_path):
    model = adapted()
    model.get_base_model().is_loaded_in_4bit = True  # what transformers sets on a bitsandbytes 4-bit load
    with pytest.raises(CookbookInputError, match="reload the base in bf16"):
        merge_to_standalone(model, tmp_path / "merged")


def test_bf16_tolerance_is_looser():
    assert merge_tolerance(torch.bfloat16) > merge_tolerance(torch.float32)


def test_merge_check_passes_a_correct_bf16_merge_with_large_logits():
    """Issue item 5: the old fixed tolerance, 5e-2, cannot pass in bf16 where logits are 16..32 (spacing 0.125)."""
    generator = torch.Generator().manual_seed(0)
    reference = torch.randn(2, 12, 64, generator=generator) * 8 + 20  # logits of size 16..32 and beyond
    reference[..., 3] += 40  # a clear greedy token at every position
    bf16 = reference.bfloat16()
    # a merged model rounds differently: one or two steps of bf16's spacing apart
    spacing = torch.finfo(torch.bfloat16).eps * 2.0 ** torch.floor(torch.log2(bf16.float().abs()))
    merged = (bf16.float() + spacing * torch.randint(-2, 3, bf16.shape, generator=generator)).bfloat16()
    diff = (merged.float() - bf16.float()).abs().max().item()
    assert diff > 5e-2  # what the old fixed tolerance refused
    check = check_merged_logits(bf16, merged, torch.bfloat16)
    assert check.passed, str(check)
    assert check.tolerance == pytest.approx(8 * 0.5)  # 8 spacings at the largest logit (64..128: spacing 0.5)


def test_merge_check_fails_a_wrong_merge_in_bf16():
    generator = torch.Generator().manual_seed(1)
    reference = (torch.randn(2, 12, 64, generator=generator) * 8 + 20).bfloat16()
    wrong = (reference.float() + torch.randn(reference.shape, generator=generator) * 6).bfloat16()
    assert not check_merged_logits(reference, wrong, torch.bfloat16).passed
    flipped = reference.clone()
    flipped[..., 0] = reference.max() + 20  # the greedy token changes everywhere, within no tolerance
    check = check_merged_logits(reference, flipped, torch.bfloat16)
    assert not check.passed


def test_a_real_bf16_merge_on_cpu_passes(tmp_path):
    model = adapted()
    model.get_base_model().lm_head.weight.data *= 30  # logits of real-model size
    model = model.to(torch.bfloat16)
    with torch.no_grad():
        expected = model(**BATCH).logits
    merged = model.merge_and_unload()
    with torch.no_grad():
        check = check_merged_logits(expected, merged(**BATCH).logits, torch.bfloat16)
    assert expected.float().abs().max() > 8
    assert check.passed, str(check)


def test_dtype_spacing():
    assert dtype_spacing(torch.bfloat16, 20.0) == 0.125
    assert dtype_spacing(torch.float16, 20.0) == pytest.approx(2**-10 * 16)
