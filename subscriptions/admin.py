from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from config.admin_tools import AppendOnlyAdmin, ReadOnlyInline, ReasonForm, confirm_with_form
from subscriptions.models import (
    Machine,
    Plan,
    PriceOption,
    Subscription,
    SubscriptionEvent,
    UsageEvent,
    UsageSession,
)
from subscriptions.services.machines import (
    machine_device_token_rotate,
    usage_session_end,
    usage_session_extend,
)
from subscriptions.services.plans import (
    MAX_MANUAL_DAYS,
    subscription_activate_manually,
    subscription_deactivate,
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


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "tier", "price", "currency", "period_days", "active")
    list_filter = ("active", "currency", "tier")
    search_fields = ("code", "name")

    def has_delete_permission(self, request, obj=None):
        return False  # plans paid for stay; switch them off with "active"


class SubscriptionEventInline(ReadOnlyInline):
    model = SubscriptionEvent
    fk_name = "subscription"
    fields = ("created_at", "type", "actor_type", "actor", "reason", "payment_session", "data")
    ordering = ("-id",)


class ActivateForm(ReasonForm):
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.all())
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=MAX_MANUAL_DAYS)

    field_order = ["plan", "days", "reason"]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = (
        "user",
        "plan",
        "tier",
        "status",
        "current_period_end",
        "last_payment_at",
    )
    list_filter = ("status", "plan", "tier")
    search_fields = ("user__username", "user__email", "events__payment_session__reference")
    readonly_fields = [f.name for f in Subscription._meta.fields]
    inlines = [SubscriptionEventInline]
    actions = ["activate_manually", "deactivate"]

    def has_add_permission(self, request):
        return False  # created with the user's first payment or manual activation

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Activate manually (plan, days, reason)"), permissions=["change"])
    def activate_manually(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Activate subscriptions manually"),
            form_class=ActivateForm,
            apply=lambda sub, data: subscription_activate_manually(
                user=sub.user,
                plan=data["plan"],
                days=data["days"],
                actor=request.user,
                reason=data["reason"],
            ),
        )

    @admin.action(description=_("Deactivate (reason required)"), permissions=["change"])
    def deactivate(self, request, queryset):
        return confirm_with_form(
            self,
            request,
            queryset,
            title=_("Deactivate subscriptions"),
            form_class=ReasonForm,
            apply=lambda sub, data: subscription_deactivate(
                user=sub.user, actor=request.user, reason=data["reason"]
            ),
        )


@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "user", "type", "actor_type", "actor", "payment_session")
    list_filter = ("type", "actor_type")
    search_fields = ("user__username", "user__email", "payment_session__reference", "reason")
    date_hierarchy = "created_at"
