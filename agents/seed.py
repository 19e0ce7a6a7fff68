"""The providers and models of a fresh install (used by the data migration and by tests)."""

from everruns.core.ids import uuid7

SEED = [
    ("llmsim", "Simulated LLM (llmsim)", [("llmsim-1", "llmsim 1 (simulated, offline)", True)]),
    (
        "openai",
        "OpenAI",
        [("gpt-4o-mini", "GPT-4o mini", False), ("gpt-4o", "GPT-4o", False), ("gpt-4.1-mini", "GPT-4.1 mini", False)],
    ),
    (
        "anthropic",
        "Anthropic",
        [
            ("claude-3-5-haiku-latest", "Claude 3.5 Haiku", False),
            ("claude-sonnet-4-20250514", "Claude Sonnet 4", False),
        ],
    ),
]


def seed(LlmProvider, LlmModel) -> None:
    """Idempotent: creates what is missing."""
    for provider_type, name, models in SEED:
        provider = LlmProvider.objects.filter(provider_type=provider_type, name=name).first()
        if provider is None:
            provider = LlmProvider.objects.create(id=uuid7(), name=name, provider_type=provider_type)
        for model_id, display, is_default in models:
            if not LlmModel.objects.filter(provider=provider, model_id=model_id).exists():
                default = is_default and not LlmModel.objects.filter(is_default=True).exists()
                LlmModel.objects.create(
                    id=uuid7(), provider=provider, model_id=model_id, display_name=display, is_default=default
                )
