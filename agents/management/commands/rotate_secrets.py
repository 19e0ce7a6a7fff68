from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents import secrets
from agents.models import LlmProvider


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider key with SECRETS_ENCRYPTION_KEY "
        "(old keys in SECRETS_ENCRYPTION_KEY_PREVIOUS)."
    )

    def handle(self, *args, **options):
        if not secrets.is_configured():
            raise CommandError("SECRETS_ENCRYPTION_KEY is not set")
        done = failed = 0
        with transaction.atomic():
            for provider in LlmProvider.objects.select_for_update().exclude(api_key_encrypted=""):
                try:
                    provider.api_key_encrypted = secrets.rotate(provider.api_key_encrypted)
                except secrets.SecretUnreadable:
                    failed += 1
                    self.stderr.write(
                        f"provider {provider.pk} ({provider.name}): key unreadable with the configured keys"
                    )
                    continue
                provider.save(update_fields=["api_key_encrypted", "updated_at"])
                done += 1
        self.stdout.write(f"re-encrypted {done} provider key(s); {failed} unreadable")
        if failed:
            raise CommandError(f"{failed} provider key(s) could not be decrypted")
