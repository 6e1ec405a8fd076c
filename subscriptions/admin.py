from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from config.admin_tools import ReadOnlyInline, ReasonForm, confirm_with_form
from subscriptions.models import Machine, PriceOption, UsageEvent, UsageSession
from subscriptions.services.machines import (
    machine_device_token_rotate,
    usage_session_end,
    usage_session_extend,
)


class PriceOptionInline(admin.TabularInline):
    model = PriceOption
    extra = 1


@admin.register(Machine)
class MachineAdmin(admin.ModelAdmin):
    list_display = ("name", "code", "location", "active", "currency")
    list_filter = ("active",)
    search_fields = ("name", "code", "location")
    exclude = ("device_token_hash",)
    inlines = [PriceOptionInline]
    actions = ["new_device_token"]

    @admin.action(description=_("Issue a new device token (shown once)"), permissions=["change"])
    def new_device_token(self, request, queryset):
        for machine in queryset:
            token = machine_device_token_rotate(machine=machine)
            self.message_user(request, f"{machine.code}: {token}", messages.WARNING)


class UsageEventInline(ReadOnlyInline):
    model = UsageEvent
    fields = ("created_at", "type", "source", "actor", "reason", "data")


class ExtendForm(ReasonForm):
    minutes = forms.IntegerField(label=_("Minutes to add"), min_value=1, max_value=1440)


@admin.register(UsageSession)
class UsageSessionAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "machine",
        "customer",
        "minutes",
        "amount",
        "status",
        "started_at",
        "ends_at",
    )
    list_filter = ("status", "machine")
    search_fields = (
        "customer__username",
        "customer__email",
        "machine__code",
        "payment_session__reference",
    )
    readonly_fields = [f.name for f in UsageSession._meta.fields]
    inlines = [UsageEventInline]
    actions = ["end_now", "extend"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("End now (reason required)"), permissions=["change"])
    def end_now(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("End machine sessions now"),
            form_class=ReasonForm,
            apply=lambda usage, data: usage_session_end(
                usage_session_id=usage.pk, actor=request.user, reason=data["reason"]
            ),
        )

    @admin.action(description=_("Extend (minutes and reason required)"), permissions=["change"])
    def extend(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Extend machine sessions"),
            form_class=ExtendForm,
            apply=lambda usage, data: usage_session_extend(
                usage_session_id=usage.pk,
                actor=request.user,
                minutes=data["minutes"],
                reason=data["reason"],
            ),
        )
