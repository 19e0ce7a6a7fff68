from django.apps import AppConfig


class RunnerConfig(AppConfig):
    name = "runner"
    verbose_name = "Runner"

    def ready(self):
        from runner.tools import registry  # noqa: PLC0415 - models load before ready()

        registry.publish_catalogue()
