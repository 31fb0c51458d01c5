"""The ChatML chat template the cookbook gives a base model that has none (and the smoke model uses).

`{% generation %}` marks the assistant's turns so TRL's assistant-only loss can find them. A turn ends
with `<|im_end|>`; a model trained on it must stop generating there, so the recipes make it the EOS.
"""

CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")

CHATML_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['role'] == 'assistant' %}"
    "{% generation %}{{- message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{%- else %}"
    "{{- message['content'] + '<|im_end|>' }}"
    "{%- endif %}"
    "{{- '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
