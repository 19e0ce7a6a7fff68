from django import forms
from django.contrib import admin

from agents.schedules import cron, services
from agents.schedules.models import Schedule, ScheduleRun


class ScheduleAdminForm(forms.ModelForm):
    class Meta:
        model = Schedule
        fields = ["agent", "cron", "timezone", "message", "session", "enabled", "overlap"]

    def clean(self):
        data = super().clean()
        try:
            cron.check(data.get("cron") or "", data.get("timezone") or "")
        except cron.BadSchedule as exc:
            self.add_error(exc.field, str(exc))
        message = data.get("message")
        if not (isinstance(message, dict) and isinstance(message.get("content"), list) and message["content"]):
            self.add_error("message", 'A message is {"content": [part, ...]} with at least one part.')
        session = data.get("session")
        if session is not None and data.get("agent") is not None and session.agent_id != data["agent"].pk:
            self.add_error("session", "That session is another agent's.")
        return data


class ScheduleRunInline(admin.TabularInline):
    model = ScheduleRun
    extra = 0
    can_delete = False
    fields = ["scheduled_for", "manual", "status", "session_id", "message_id", "error", "created_at"]
    readonly_fields = fields
    ordering = ["-id"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleAdminForm
    list_display = ["agent", "cron", "timezone", "enabled", "overlap", "next_run_at", "last_run_at"]
    list_filter = ["enabled", "overlap"]
    search_fields = ["id", "cron", "agent__name"]
    readonly_fields = ["id", "api_key_id", "next_run_at", "last_run_at", "created_at", "updated_at"]
    inlines = [ScheduleRunInline]
    actions = ["run_now"]

    def save_model(self, request, obj, form, change):
        obj.next_run_at = cron.next_after(obj.cron, obj.timezone, services.now()) if obj.enabled else None
        super().save_model(request, obj, form, change)

    @admin.action(description="Run the selected schedules now")
    def run_now(self, request, queryset):
        runs = [services.schedule_run_now(schedule=schedule) for schedule in queryset]
        self.message_user(request, "Runs: " + ", ".join(run.status for run in runs))
