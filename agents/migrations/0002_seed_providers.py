"""A fresh install: the simulated provider with the global default model, plus OpenAI and Anthropic
providers whose models work once OPENAI_API_KEY / ANTHROPIC_API_KEY are in the environment."""

from django.db import migrations

from everruns.ids import uuid7

SEED = [
    ("llmsim", "Simulated LLM (llmsim)", [("llmsim-1", "llmsim 1 (simulated, offline)", True)]),
    ("openai", "OpenAI", [("gpt-4o-mini", "GPT-4o mini", False), ("gpt-4o", "GPT-4o", False), ("gpt-4.1-mini", "GPT-4.1 mini", False)]),
    ("anthropic", "Anthropic", [("claude-3-5-haiku-latest", "Claude 3.5 Haiku", False), ("claude-sonnet-4-20250514", "Claude Sonnet 4", False)]),
]


def seed(apps, schema_editor):
    LlmProvider = apps.get_model("agents", "LlmProvider")
    LlmModel = apps.get_model("agents", "LlmModel")
    for provider_type, name, models in SEED:
        provider = LlmProvider.objects.create(id=uuid7(), name=name, provider_type=provider_type)
        for model_id, display, is_default in models:
            LlmModel.objects.create(
                id=uuid7(), provider=provider, model_id=model_id, display_name=display, is_default=is_default
            )


def unseed(apps, schema_editor):
    apps.get_model("agents", "LlmProvider").objects.filter(provider_type__in=[s[0] for s in SEED]).delete()


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
