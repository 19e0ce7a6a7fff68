from django.apps import AppConfig

from everruns.telemetry import tracing


class EverrunsConfig(AppConfig):
    name = "everruns"
    verbose_name = "Everruns"

    def ready(self):
        tracing.setup()  # every process: web, worker, management commands (nothing without the setting)
