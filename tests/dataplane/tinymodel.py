"""A model folder dynamo.mocker can load offline: config.json, a byte-level BPE
tokenizer.json trained on a few sentences, and a tokenizer_config.json with a chat template.
No weights: the mocker only tokenizes and simulates."""

from __future__ import annotations

import json
import pathlib


def make(directory: pathlib.Path) -> pathlib.Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(["prefill and decode move the KV cache between pods, tell me about it."] * 20,
                                  trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    eos = tokenizer.token_to_id("<|endoftext|>")
    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "model_max_length": 4096, "chat_template": template}))
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": tokenizer.get_vocab_size(),
        "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 4, "max_position_embeddings": 4096, "eos_token_id": eos, "bos_token_id": eos,
        "torch_dtype": "float16"}))
    return directory


WORDS = 500


def make_words(directory: pathlib.Path) -> pathlib.Path:
    """A model folder whose tokenizer is one token per word: "w0" .. "w499" (ids 0..499),
    split on whitespace, so a prompt of N such words is N tokens. dynamo.mocker's generated
    tokens decode to empty text with either tokenizer (ai-dynamo 1.6.1), so what it streams
    is measured by the frontend's own metrics, not by content."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    directory.mkdir(parents=True, exist_ok=True)
    vocab = {f"w{i}": i for i in range(WORDS)} | {"<unk>": WORDS, "<|endoftext|>": WORDS + 1}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    tokenizer.add_special_tokens(["<|endoftext|>"])
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": None, "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>", "model_max_length": 16384,
        "chat_template": "{% for m in messages %}{{ m['content'] }} {% endfor %}"}))
    (directory / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": WORDS + 2, "hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "max_position_embeddings": 16384, "eos_token_id": WORDS + 1, "bos_token_id": WORDS + 1,
        "torch_dtype": "float16"}))
    return directory


if __name__ == "__main__":
    import sys
    (make_words if "--words" in sys.argv[2:] else make)(pathlib.Path(sys.argv[1]))
