# Upstream Everruns compatibility: read-only session files.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("agent_sessions", "0007_turn_active_key_index")]

    operations = [
        migrations.AddField(model_name="sessionfile", name="is_readonly", field=models.BooleanField(default=False)),
    ]
