from django import forms
from django.contrib import admin, messages

from everruns.core.errors import ValidationError
from sessions.webhooks import services
from sessions.webhooks.models import EVENT_TYPES, Webhook, WebhookDelivery


class WebhookAdminForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(t, t) for t in EVENT_TYPES], widget=forms.CheckboxSelectMultiple, help_text="Event types delivered."
    )

    class Meta:
        model = Webhook
        fields = ["url", "events", "agent", "description", "enabled"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            services.url_check(url)
        except ValidationError as exc:
            raise forms.ValidationError(exc.details["url"]) from None
        return url


@admin.register(Webhook)
class WebhookAdmin(admin.ModelAdmin):
    form = WebhookAdminForm
    list_display = ["url", "enabled", "agent", "created_at"]
    list_filter = ["enabled"]
    search_fields = ["url", "description", "id"]
    readonly_fields = ["id", "created_at", "updated_at", "previous_secret_expires_at"]
    actions = ["rotate_secret"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.secret = services.secret_new()
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(request, f"Signing secret of {obj.url} (shown this once): {obj.secret}")

    @admin.action(description="Rotate the signing secret (the old one signs too for 24 h)")
    def rotate_secret(self, request, queryset):
        for webhook in queryset:
            rotated = services.webhook_rotate_secret(webhook=webhook)
            messages.warning(request, f"New signing secret of {rotated.url} (shown this once): {rotated.secret}")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["id", "webhook", "event_type", "status", "attempts", "last_status_code", "created_at"]
    list_filter = ["status", "event_type"]
    search_fields = ["id", "session_id", "event_id"]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Send the selected deliveries again now")
    def retry(self, request, queryset):
        for delivery in queryset:
            services.delivery_retry(delivery=delivery)
        self.message_user(request, f"Queued {queryset.count()} delivery(ies) again.")
