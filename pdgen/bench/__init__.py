"""`pdgen bench`: datasets, an OpenAI-compatible streaming load generator, metrics with
vLLM's names and definitions, comparisons and reports."""
