"""A fresh install: the simulated provider with the global default model, plus OpenAI and Anthropic
providers whose models work once OPENAI_API_KEY / ANTHROPIC_API_KEY are in the environment."""

from django.db import migrations

from agents.seed import seed as run_seed


def seed(apps, schema_editor):

    run_seed(apps.get_model("agents", "LlmProvider"), apps.get_model("agents", "LlmModel"))


class Migration(migrations.Migration):
    dependencies = [("agents", "0001_initial")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
