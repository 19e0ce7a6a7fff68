# Upstream Everruns compatibility: a default provider and a model's capabilities.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("agents", "0005_schedules")]

    operations = [
        migrations.AddField(model_name="llmprovider", name="is_default", field=models.BooleanField(default=False)),
        migrations.AddField(
            model_name="llmmodel", name="capabilities", field=models.JSONField(blank=True, default=list)
        ),
        migrations.AddConstraint(
            model_name="llmprovider",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_default", True)), fields=("is_default",), name="one_default_provider"
            ),
        ),
    ]
