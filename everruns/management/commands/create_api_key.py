from django.core.management.base import BaseCommand

from everruns.api.keys import api_key_create
from everruns.models import ApiKey


class Command(BaseCommand):
    help = "Create an API key for /v1 and print it (it is shown this once; only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--scope", choices=ApiKey.Scope.values, default=ApiKey.Scope.AGENTS)

    def handle(self, *args, name, scope, **options):
        _key, secret = api_key_create(name=name, scope=scope)
        self.stdout.write(secret)
