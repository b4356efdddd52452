"""Prometheus metrics of AI generations, defined on the default registry (the /metrics route exposes it)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TIME_TO_FIRST_TOKEN = Histogram(
    "conversme_ai_time_to_first_token_seconds",
    "From a prompt's generation starting to its first streamed token.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
)
TOKENS_PER_SECOND = Histogram(
    "conversme_ai_tokens_per_second",
    "Completion tokens per second of a generation, from its first token to its last.",
    buckets=(1, 5, 10, 20, 40, 80, 160, 320, 640),
)
GENERATIONS = Counter(
    "conversme_ai_generations_total",
    "Generations by how they ended: completed, cancelled, error or interrupted.",
    ["outcome"],
)
OUTCOMES = ("completed", "cancelled", "error", "interrupted")
