from django import forms
from django.contrib import admin

from agents import capabilities
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


@admin.register(LlmProvider)
class LlmProviderAdmin(admin.ModelAdmin):
    list_display = ["name", "provider_type", "status", "created_at"]
    list_filter = ["provider_type", "status"]
    search_fields = ["name"]
    exclude = ["api_key_encrypted"]
    inlines = [LlmModelInline]


@admin.register(LlmModel)
class LlmModelAdmin(admin.ModelAdmin):
    list_display = ["model_id", "display_name", "provider", "is_default", "status"]
    list_filter = ["is_default", "status", "provider__provider_type"]
    search_fields = ["model_id", "display_name"]
