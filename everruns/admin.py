from django.contrib import admin, messages

from everruns.api.keys import api_key_create, api_key_revoke
from everruns.models import ApiKey


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "scope", "prefix", "created_at", "last_used_at", "expires_at", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "prefix"]
    fields = ["name", "scope", "expires_at", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def get_readonly_fields(self, request, obj=None):
        # A key's secret cannot change: once created, only its name and expiry may.
        return [*self.readonly_fields, "scope"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        key, secret = api_key_create(name=obj.name, scope=obj.scope, expires_at=obj.expires_at)
        obj.pk, obj.prefix = key.pk, key.prefix
        messages.warning(request, f"The new key, shown this once: {secret}")

    def has_delete_permission(self, request, obj=None):
        return False  # keys are revoked, never deleted: their rows say who had access

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        for key in queryset:
            api_key_revoke(key=key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
