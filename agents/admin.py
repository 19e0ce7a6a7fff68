import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.db import transaction
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from rest_framework.exceptions import ValidationError as InvalidAgent

from agents import capabilities, llm_services, policies, secrets, services, transfer
from agents.mcp import services as mcp_services
from agents.models import Agent, LlmModel, LlmProvider, McpServer
from everruns.core.errors import Conflict


class AgentAdminForm(forms.ModelForm):
    capabilities = forms.MultipleChoiceField(
        required=False, widget=forms.CheckboxSelectMultiple, help_text="Tools and prompt text the agent gets."
    )

    class Meta:
        model = Agent
        fields = "__all__"
        help_texts = {
            "tool_policy": 'Tool name or "*" (any other tool) -> "auto" or "ask" (waits for approval), e.g. '
            '{"web_fetch": "ask"}.',
            "limits": f"Budgets of each turn, keys {', '.join(policies.AGENT_LIMITS)} (above 0; null: no limit).",
        }

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
    list_display = ["name", "status", "default_model", "created_at", "debug_link"]
    list_filter = ["status", "created_at"]
    search_fields = ["name", "description", "id"]
    readonly_fields = ["id", "created_at", "updated_at", "debug_link"]
    actions = ["archive", "unarchive", "duplicate"]

    @admin.display(description="Debug page")
    def debug_link(self, agent):
        return format_html('<a href="{}">open</a>', reverse("debug:agent", args=[agent.pk])) if agent.pk else "-"

    @admin.action(description="Archive the selected agents (their sessions stay readable)")
    def archive(self, request, queryset):
        active = queryset.filter(status=Agent.Status.ACTIVE)
        for agent in active:
            services.agent_archive(agent=agent)
        self.message_user(request, f"Archived {len(active)} agent(s).")

    @admin.action(description="Unarchive the selected agents")
    def unarchive(self, request, queryset):
        archived = queryset.filter(status=Agent.Status.ARCHIVED)
        for agent in archived:
            services.agent_update(agent=agent, data={"status": Agent.Status.ACTIVE})
        self.message_user(request, f"Unarchived {len(archived)} agent(s).")

    @admin.action(description="Duplicate the selected agents")
    def duplicate(self, request, queryset):
        for agent in queryset:
            try:
                copy = transfer.agent_duplicate(agent=agent)
            except InvalidAgent as exc:
                self.message_user(request, f"{agent.name} was not duplicated: {exc.detail}", messages.ERROR)
            else:
                self.message_user(request, f"Duplicated {agent.name} as {copy.name}.")


class DeleteThroughService(admin.ModelAdmin):
    """Deletes go through the service, as in the API. When it refuses (a Conflict), the admin shows its
    message and deletes nothing, from the delete page and from the "delete selected" action alike."""

    def delete_through_service(self, obj) -> None:
        raise NotImplementedError

    def delete_model(self, request, obj):
        self.delete_through_service(obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_through_service(obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)  # atomic: a refusal rolls back
        except Conflict as exc:
            self.message_user(request, exc.message, messages.ERROR)
            opts = self.opts
            change = f"admin:{opts.app_label}_{opts.model_name}_change"
            return HttpResponseRedirect(reverse(change, args=[quote(object_id)], current_app=self.admin_site.name))

    def response_action(self, request, queryset):
        try:
            with transaction.atomic():
                return super().response_action(request, queryset)
        except Conflict as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class LlmModelInline(admin.TabularInline):
    """Adds and edits a provider's models; the default is changed, and models deleted, on the model's own page
    (through agents.llm_services)."""

    model = LlmModel
    extra = 0
    readonly_fields = ["is_default"]
    can_delete = False
    show_change_link = True


class LlmProviderAdminForm(forms.ModelForm):
    """The key is write-only: never rendered, encrypted before it is stored (agents.llm_services.provider_save,
    which also removes it when the base URL or type changes). The provider type, base_url and settings rules
    are LlmProvider.clean(), which the form runs, as the API's service does."""

    api_key = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave blank to keep the stored key. A new base URL or provider type removes it: enter it again.",
    )
    clear_api_key = forms.BooleanField(required=False, help_text="Remove the stored key.")

    class Meta:
        model = LlmProvider
        exclude = ["api_key_encrypted"]

    def clean_api_key(self):
        key = self.cleaned_data.get("api_key")
        if key and not secrets.is_configured():
            raise forms.ValidationError("SECRETS_ENCRYPTION_KEY is not configured: the key cannot be stored.")
        return key


@admin.register(LlmProvider)
class LlmProviderAdmin(DeleteThroughService):
    form = LlmProviderAdminForm
    list_display = ["name", "provider_type", "has_key", "status", "created_at"]
    list_filter = ["provider_type", "status"]
    search_fields = ["name"]
    inlines = [LlmModelInline]

    @admin.display(boolean=True, description="API key set")
    def has_key(self, provider):
        return bool(provider.api_key_encrypted)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        llm_services.provider_save(provider=obj, api_key=data.get("api_key") or "", clear_key=data.get("clear_api_key"))

    def delete_through_service(self, obj):
        llm_services.provider_delete(provider=obj)


@admin.register(LlmModel)
class LlmModelAdmin(DeleteThroughService):
    list_display = ["model_id", "display_name", "provider", "is_default", "status"]
    list_filter = ["is_default", "status", "provider__provider_type"]
    search_fields = ["model_id", "display_name"]

    def save_model(self, request, obj, form, change):
        llm_services.model_save(model=obj)  # ticking is_default moves the default here

    def delete_through_service(self, obj):
        llm_services.model_delete(model=obj)


class McpServerAdminForm(forms.ModelForm):
    """Headers are write-only, as a provider's key: never rendered, encrypted before they are stored
    (agents.mcp.services.server_save, which also removes them when the URL changes)."""

    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='A JSON object, e.g. {"Authorization": "Bearer ..."}. Leave blank to keep the stored headers; '
        "a new URL removes them: enter them again.",
    )
    clear_headers = forms.BooleanField(required=False, help_text="Remove the stored headers.")

    class Meta:
        model = McpServer
        fields = ["name", "url", "transport", "timeout_seconds", "default_policy", "status"]

    def clean_headers(self):
        raw = self.cleaned_data.get("headers")
        if not raw:
            return None
        try:
            headers = json.loads(raw)
        except ValueError as exc:
            raise forms.ValidationError(f"Not JSON: {exc}") from None
        if found := mcp_services.headers_errors(headers):
            raise forms.ValidationError(found)
        if headers and not secrets.is_configured():
            raise forms.ValidationError("SECRETS_ENCRYPTION_KEY is not configured: the headers cannot be stored.")
        return headers


@admin.register(McpServer)
class McpServerAdmin(admin.ModelAdmin):
    form = McpServerAdminForm
    list_display = ["name", "url", "transport", "default_policy", "status", "tool_count", "last_error"]
    list_filter = ["transport", "status", "default_policy"]
    search_fields = ["name", "url"]
    readonly_fields = ["header_names", "tool_names", "tools_refreshed_at", "last_error", "created_at", "updated_at"]
    actions = ["refresh"]

    @admin.display(description="Tools")
    def tool_count(self, server):
        return len(server.tools or [])

    @admin.display(description="Tools (as listed by the server)")
    def tool_names(self, server):
        return ", ".join(t["name"] for t in server.tools or []) or "-"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        mcp_services.server_save(server=obj, headers=data.get("headers"), clear_headers=data.get("clear_headers"))
        mcp_services.server_refresh(server=obj)

    @admin.action(description="List the selected servers' tools again")
    def refresh(self, request, queryset):
        for server in queryset:
            mcp_services.server_refresh(server=server)
            if server.last_error:
                self.message_user(request, f"{server.name}: {server.last_error}", messages.WARNING)
        self.message_user(request, f"Refreshed {len(queryset)} MCP server(s).")


from agents.schedules import admin as _schedules_admin  # noqa: E402,F401 - registers the schedules' admin
