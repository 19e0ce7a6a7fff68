from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from agents import secrets
from agents.mcp.services import headers_rotate
from agents.models import LlmProvider


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored provider key and MCP server's headers with SECRETS_ENCRYPTION_KEY "
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
            headers_done, headers_unreadable = headers_rotate()
            for server in headers_unreadable:
                self.stderr.write(
                    f"MCP server {server.pk} ({server.name}): headers unreadable with the configured keys"
                )
        self.stdout.write(f"re-encrypted {done} provider key(s); {failed} unreadable")
        self.stdout.write(f"re-encrypted {headers_done} MCP server header set(s); {len(headers_unreadable)} unreadable")
        if failed or headers_unreadable:
            raise CommandError(
                f"{failed} provider key(s) and {len(headers_unreadable)} MCP header set(s) could not be decrypted"
            )
