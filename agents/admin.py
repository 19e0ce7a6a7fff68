from django import forms
from django.contrib import admin

from agents import capabilities, provider_types, secrets
from agents.models import Agent, LlmModel, LlmProvider


class AgentAdminForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Tools and prompt text the agent gets."
    )

    class Meta:
        model = Agent
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["capabilities"].choices = [
            (c["id"], f"{c['name']} — {c['description']}") for c in capabilities.all_info()
        ]

    def clean_capabilities(self):
        chosen = self.cleaned_data["capabilities"]
        previous = list(self.instance.capabilities or []) if self.instance.pk else []
        # keep the agent's existing order, then the newly ticked ones
        return [c for c in previous if c in chosen] + [c for c in chosen if c not in previous]


@admin.register(Agent)
class AgentAdmin(admin.ModelAdmin):
    form = AgentAdminForm
    list_display = ["name", "status", "default_model", "created_at"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "description", "id"]
    readonly_fields = ["id", "created_at", "updated_at"]


class LlmModelInline(admin.TabularInline):
    model = LlmModel
    extra = 0


class LlmProviderAdminForm(forms.ModelForm):
    """The key is write-only: never rendered, encrypted before it is stored."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = LlmProvider
        exclude = ["api_key_encrypted"]

    def clean_provider_type(self):
        value = self.cleaned_data["provider_type"]
        if value not in provider_types.ALL:
            raise forms.ValidationError("Unknown provider type: use a litellm provider, openai_compatible or llmsim.")
        return value

    def clean_api_key(self):
        key = self.cleaned_data.get("api_key")
        if key and not secrets.is_configured():
            raise forms.ValidationError("SECRETS_ENCRYPTION_KEY is not configured: the key cannot be stored.")
        return key

    def save(self, commit=True):
        provider = super().save(commit=False)
        if self.cleaned_data.get("clear_api_key"):
            provider.api_key_encrypted = ""
        elif self.cleaned_data.get("api_key"):
            provider.api_key_encrypted = secrets.encrypt(self.cleaned_data["api_key"])
        if commit:
            provider.save()
        return provider


@admin.register(LlmProvider)
class LlmProviderAdmin(admin.ModelAdmin):
    form = LlmProviderAdminForm
    list_display = ["name", "provider_type", "has_key", "status", "created_at"]
    list_filter = ["provider_type", "status"]
    search_fields = ["name"]
    inlines = [LlmModelInline]

    @admin.display(boolean=True, description="API key set")
    def has_key(self, provider):
        return bool(provider.api_key_encrypted)


@admin.register(LlmModel)
class LlmModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "display_name", "provider", "is_default", "status"]
    list_filter = ["is_default", "status", "provider__provider_type"]
    search_fields = ["model_id", "display_name"]
