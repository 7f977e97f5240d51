"""Prefix-sharing datasets: groups x prompts per group, each prompt = the group's shared
random prefix + a unique random suffix, seeded and deterministic.

Lengths are in words of five random letters and digits. With SmolLM2's BPE one such word
costs about 3.3 tokens (100 words -> 332 tokens, measured with llama.cpp's /tokenize); other
tokenizers differ, so size for tokens by calibrating on the target server.

Default output: one JSON object per line, {"prompt": ..., "group_id": ..., ...}, which
`vllm bench serve --dataset-name custom` loads directly. array_format=True writes the seed
guide's one-array-per-line format ([{"prompt": ...}]).
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass

TOKENS_PER_WORD_SMOLLM2 = 3.3
_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Spec:
    groups: int = 4
    prompts_per_group: int = 8
    prefix_words: int = 300
    suffix_words: int = 30
    seed: int = 42
    shuffle: bool = True


def _words(rng: random.Random, n: int) -> str:
    return " ".join("".join(rng.choices(_ALPHABET, k=5)) for _ in range(n))


def generate(spec: Spec) -> list[dict]:
    rng = random.Random(spec.seed)
    rows = []
    for group in range(spec.groups):
        prefix = _words(rng, spec.prefix_words)
        for index in range(spec.prompts_per_group):
            suffix = _words(rng, spec.suffix_words)
            rows.append({"prompt": f"{prefix} {suffix}" if spec.prefix_words else suffix, "group_id": group,
                         "index": index, "prefix_words": spec.prefix_words, "suffix_words": spec.suffix_words,
                         "seed": spec.seed})
    if spec.shuffle:
        rng.shuffle(rows)
    return rows


def tokens_per_word(tokenize_url: str, model: str = "", sample_words: int = 200, seed: int = 0) -> float:
    """Measure how many tokens one generated word costs on the target server's tokenizer
    (POST /tokenize: llama.cpp answers {"tokens": [...]}, vLLM {"count": n})."""
    import urllib.request

    text = _words(random.Random(seed), sample_words)
    body = json.dumps({"content": text, "prompt": text, "model": model, "add_special_tokens": False}).encode()
    request = urllib.request.Request(tokenize_url.rstrip("/") + "/tokenize", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    count = answer["count"] if "count" in answer else len(answer["tokens"])
    return count / sample_words


def dumps(rows: list[dict], *, array_format: bool = False) -> str:
    if array_format:
        return "".join(json.dumps([{"prompt": r["prompt"]}], ensure_ascii=False) + "\n" for r in rows)
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def loads(text: str) -> list[dict]:
    """Either format back into rows (array lines become {"prompt": ...})."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        rows.append(item[0] if isinstance(item, list) else item)
    return rows
