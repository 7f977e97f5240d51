"""Named scenarios from the seed guide (cache-test-guide-72b-671b.md), as dataset shapes
and request sizes. Every knob can be overridden on the command line."""

from __future__ import annotations

from pdgen.bench.dataset import Spec

# name -> (dataset spec, max_tokens, concurrency, rounds, nonce in every round)
SCENARIOS: dict[str, tuple[Spec, int, int | None, int, bool]] = {
    # A long shared document, many questions about it: the cache should carry round 2.
    "long_context_high_reuse": (Spec(groups=2, prompts_per_group=8, prefix_words=1000, suffix_words=20), 32, 4, 2,
                                False),
    # Conversations that grow turn by turn over a shared history.
    "multi_turn_conversation": (Spec(groups=4, prompts_per_group=6, prefix_words=300, suffix_words=40), 64, 4, 2,
                                False),
    # Medium prompts, long outputs: decode-bound.
    "code_generation": (Spec(groups=4, prompts_per_group=4, prefix_words=200, suffix_words=50), 256, 4, 2, False),
    # Many independent medium requests at high concurrency.
    "batch_processing": (Spec(groups=1, prompts_per_group=32, prefix_words=100, suffix_words=100), 64, 16, 2, False),
    # No reuse at all: every round cold (a nonce starts every prompt).
    "cold_start": (Spec(groups=16, prompts_per_group=1, prefix_words=0, suffix_words=300), 32, 4, 2, True),
}
