from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.widgets import AutocompleteSelect
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from core.admin_tools import (
    AppendOnlyAdmin,
    ReadOnlyInline,
    ReadOnlyModelAdmin,
    ReasonForm,
    confirm_with_form,
)
from core.errors import ConfirmaError
from payments.admin import PaymentSessionAdmin
from subscriptions.models import (
    Machine,
    Plan,
    PriceOption,
    Subscription,
    SubscriptionEvent,
    UsageEvent,
    UsageSession,
)
from subscriptions.selectors import payment_session_by_reference
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


def _usage_name(usage) -> str:
    return f"#{usage.pk} ({usage.machine.code})"


def _subscriber(subscription) -> str:
    return str(subscription.user)


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
    ordering = ("-created_at", "-id")


class ExtendForm(ReasonForm):
    minutes = forms.IntegerField(label=_("Minutes to add"), min_value=1, max_value=1440)


@admin.register(UsageSession)
class UsageSessionAdmin(ReadOnlyModelAdmin):
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
            success=ngettext_lazy(
                "%(count)d machine session ended: %(objects)s.",
                "%(count)d machine sessions ended: %(objects)s.",
                "count",
            ),
            name=_usage_name,
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
            success=ngettext_lazy(
                "%(count)d machine session extended: %(objects)s.",
                "%(count)d machine sessions extended: %(objects)s.",
                "count",
            ),
            name=_usage_name,
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
    ordering = ("-created_at", "-id")


class ActivateForm(ReasonForm):
    plan = forms.ModelChoiceField(label=_("Plan"), queryset=Plan.objects.all())
    days = forms.IntegerField(label=_("Days"), min_value=1, max_value=MAX_MANUAL_DAYS)

    field_order = ["plan", "days", "reason"]


class ActivateUserForm(ActivateForm):
    """Activate any user, subscription row or not: the runbook's form."""

    user = forms.ModelChoiceField(
        label=_("User"),
        queryset=get_user_model().objects.all(),
        widget=AutocompleteSelect(Subscription._meta.get_field("user"), admin.site),
    )
    payment_session = forms.CharField(
        label=_("Payment session (reference)"),
        required=False,
        max_length=64,
        help_text=_(
            "When the user paid and was not activated: the completed payment this activation "
            "stands for. It then counts as delivered and never activates a second time."
        ),
    )

    field_order = ["user", "payment_session", "plan", "days", "reason"]

    def clean_payment_session(self):
        reference = self.cleaned_data["payment_session"].strip()
        if not reference:
            return None
        session = payment_session_by_reference(reference)
        if session is None:
            raise forms.ValidationError(_("There is no payment with this reference."))
        return session


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyModelAdmin):
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
        # "Add" is the manual activation of any user (rows are made only by services).
        return self.has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def add_view(self, request, form_url="", extra_context=None):
        """Activate a user manually: user, plan, days and reason (and the payment it stands
        for, if any). Prefilled from `?user=<id>` and `?payment_session=<reference>`."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            form = ActivateUserForm(request.POST)
            if form.is_valid():
                data = form.cleaned_data
                try:
                    subscription = subscription_activate_manually(
                        user=data["user"],
                        plan=data["plan"],
                        days=data["days"],
                        actor=request.user,
                        reason=data["reason"],
                        payment_session=data["payment_session"],
                    )
                except ConfirmaError as exc:
                    form.add_error(None, exc.message)
                else:
                    self.message_user(
                        request,
                        _("%(user)s is active on %(plan)s until %(end)s.")
                        % {
                            "user": subscription.user,
                            "plan": subscription.plan.name,
                            "end": date_format(
                                timezone.localtime(
                                    subscription.current_period_end,
                                    ZoneInfo(settings.BUSINESS_TIME_ZONE),
                                ),
                                "DATETIME_FORMAT",
                            )
                            + f" ({settings.BUSINESS_TIME_ZONE})",
                        },
                        messages.SUCCESS,
                    )
                    return redirect("admin:subscriptions_subscription_change", subscription.pk)
        else:
            form = ActivateUserForm(initial=self._activation_initial(request))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Activate a user manually"),
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
        }
        return render(request, "admin/subscriptions/activate.html", context)

    @staticmethod
    def _activation_initial(request) -> dict:
        initial = {}
        session = payment_session_by_reference(request.GET.get("payment_session", ""))
        if session is not None and session.purpose == "subscription":
            plan = Plan.objects.filter(code=session.params.get("plan")).first()
            initial.update(payment_session=session.reference, user=session.user_id)
            if plan is not None:
                initial.update(plan=plan.pk, days=plan.period_days)
        if request.GET.get("user", "").isdigit():
            initial["user"] = int(request.GET["user"])
        return initial

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
            success=ngettext_lazy(
                "%(count)d subscription activated: %(objects)s.",
                "%(count)d subscriptions activated: %(objects)s.",
                "count",
            ),
            name=_subscriber,
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
            success=ngettext_lazy(
                "%(count)d subscription deactivated: %(objects)s.",
                "%(count)d subscriptions deactivated: %(objects)s.",
                "count",
            ),
            name=_subscriber,
        )


@admin.action(
    description=_("Activate the subscription by hand (opens the form)"),
    permissions=["change"],
)
def activate_subscription_for_payment(modeladmin, request, queryset):
    """From one selected plan payment to the activation form, filled in from it."""
    sessions = list(queryset[:2])
    if len(sessions) != 1 or sessions[0].purpose != "subscription":
        modeladmin.message_user(
            request, _("Select exactly one plan payment (purpose: subscription)."), messages.ERROR
        )
        return None
    url = reverse("admin:subscriptions_subscription_add")
    return redirect(f"{url}?{urlencode({'payment_session': sessions[0].reference})}")


# Payments knows none of the apps it pays for: each adds its own staff fixes to the payment
# session admin, as this one does.
PaymentSessionAdmin.actions = [*PaymentSessionAdmin.actions, activate_subscription_for_payment]


@admin.register(SubscriptionEvent)
class SubscriptionEventAdmin(AppendOnlyAdmin):
    list_display = ("created_at", "user", "type", "actor_type", "actor", "payment_session")
    list_filter = ("type", "actor_type")
    search_fields = ("user__username", "user__email", "payment_session__reference", "reason")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
