from django.apps import AppConfig


class EverrunsConfig(AppConfig):
    name = "everruns"
    verbose_name = "Everruns"
