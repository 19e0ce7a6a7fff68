from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from agents import policies
from everruns.core.errors import AppError
from sessions import turns
from sessions.models import Event, Message, Session, Turn


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ["sequence", "role", "content", "metadata", "created_at"]
    readonly_fields = fields
    ordering = ["sequence"]


class EventInline(ReadOnlyInline):
    model = Event
    fields = ["sequence", "type", "turn_id", "data", "created_at"]
    readonly_fields = fields
    ordering = ["sequence"]


class TurnInline(ReadOnlyInline):
    model = Turn
    fields = [
        "id",
        "status",
        "iterations",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "error",
        "started_at",
        "finished_at",
    ]
    readonly_fields = fields


class SessionAdminForm(forms.ModelForm):
    class Meta:
        model = Session
        fields = "__all__"
        help_texts = {
            "limits": f"Budgets of the session, keys {', '.join(policies.SESSION_LIMITS)} (above 0; null: no limit).",
        }


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    form = SessionAdminForm
    list_display = ["id", "title", "agent", "status", "input_tokens", "output_tokens", "cost_usd", "created_at"]
    list_filter = ["status", "created_at", "agent"]
    search_fields = ["id", "title", "agent__name"]
    actions = ["cancel_turn"]
    readonly_fields = [
        "debug_link",
        "id",
        "status",
        "error",
        "active_turn",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "last_event_sequence",
        "last_message_sequence",
        "created_at",
        "updated_at",
    ]
    inlines = [TurnInline, MessageInline, EventInline]

    @admin.display(description="Live")
    def debug_link(self, session):
        url = reverse("debug:session", args=[session.agent_id, session.pk])
        return format_html('<a href="{}">follow it on its debug page</a>', url)

    @admin.action(description="Cancel the running, queued or waiting turn of the selected sessions")
    def cancel_turn(self, request, queryset):
        cancelled = 0
        for session in queryset:
            try:
                turns.turn_cancel_request(session_id=session.pk, reason=f"Cancelled in the admin by {request.user}")
            except AppError as exc:  # nothing to cancel (a Conflict), or the session is gone
                self.message_user(request, f"{session}: {exc.message}", messages.WARNING)
            else:
                cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled the turn of {cancelled} session(s).")


from sessions.webhooks import admin as _webhooks_admin  # noqa: E402,F401 - registers the webhooks' admin
