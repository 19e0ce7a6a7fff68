from django import forms
from django.contrib import admin

from agents import policies
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
    readonly_fields = [
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
