"""Admin building blocks shared by the apps: audit trails are shown newest first and never
edited, read-only pages offer no Save button, and actions that ask for a form say what they
did to what."""

from django import forms
from django.contrib import admin, messages
from django.forms.formsets import DELETION_FIELD_NAME
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from core.errors import ConfirmaError

# How many object names a success message lists before it stops at "…".
NAMES_SHOWN = 10


def _has_editable_fields(context) -> bool:
    """Whether a change form has anything a person could change and save: a field of its
    own, or of an inline (a row to add, a visible field)."""
    if context["adminform"].form.fields:
        return True
    for inline_admin_formset in context.get("inline_admin_formsets", ()):
        if inline_admin_formset.has_add_permission:
            return True
        for form in inline_admin_formset.formset.forms:
            for name, field in form.fields.items():
                if name != DELETION_FIELD_NAME and not field.widget.is_hidden:
                    return True
    return False


class NoSaveWhenReadOnly:
    """For a ModelAdmin whose change page is read-only (every field shown read-only, but
    change permission kept so that its actions run): no Save buttons on that page."""

    def render_change_form(self, request, context, *args, **kwargs):
        if not _has_editable_fields(context):
            context.update(
                show_save=False, show_save_and_continue=False, show_save_and_add_another=False
            )
        return super().render_change_form(request, context, *args, **kwargs)


class ReadOnlyModelAdmin(NoSaveWhenReadOnly, admin.ModelAdmin):
    """A ModelAdmin whose change page may be read-only (see NoSaveWhenReadOnly)."""


class ReadOnlyInline(admin.TabularInline):
    """An inline that lists rows of an append-only trail (set `fields`), newest first."""

    extra = 0
    can_delete = False
    ordering = ("-pk",)

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class AppendOnlyAdmin(ReadOnlyModelAdmin):
    """An admin for an append-only log: readable and searchable, never changed; newest
    first."""

    ordering = ("-pk",)

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class StatusAuditAdmin(AppendOnlyAdmin):
    """The admin list of an audit trail whose rows record a status change
    (`from_status` → `to_status`, stored as codes): both shown as people read them.
    `status_choices` is the audited model's status TextChoices."""

    status_choices = None

    def _status_label(self, code: str) -> str:
        label = dict(self.status_choices.choices).get(code)
        return str(label) if label is not None else code

    @admin.display(description=_("status before"), ordering="from_status")
    def status_before(self, obj):
        return self._status_label(obj.from_status)

    @admin.display(description=_("status after"), ordering="to_status")
    def status_after(self, obj):
        return self._status_label(obj.to_status)


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


def _names(objects, name) -> str:
    shown = [str(name(obj)) for obj in objects[:NAMES_SHOWN]]
    if len(objects) > NAMES_SHOWN:
        shown.append("…")
    return ", ".join(shown)


def confirm_with_form(
    modeladmin, request, queryset, *, title, form_class, apply, success, name=str
):
    """The body of an admin action that first asks for a form (at least a reason), then
    calls `apply(obj, cleaned_data)` for each selected object; domain errors become
    messages. `success` is an `ngettext_lazy(..., "count")` message that may use
    `%(count)d` and `%(objects)s` (the names, by `name(obj)`, of the objects changed).
    Returns the form page, or None once applied."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        done = []
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
            except ConfirmaError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
            else:
                done.append(obj)
        if done:
            modeladmin.message_user(
                request,
                success % {"count": len(done), "objects": _names(done, name)},
                messages.SUCCESS,
            )
        else:
            modeladmin.message_user(request, _("Nothing was changed."), messages.WARNING)
        return None
    return render(
        request,
        "admin/confirma_reason.html",
        {
            **modeladmin.admin_site.each_context(request),
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
            "media": modeladmin.media + form.media,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        },
    )


class ResolveForm(forms.Form):
    """What staff say when they mark a problem dealt with (alerts, dead deliveries)."""

    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        max_length=2000,
        help_text=_("What was done about it (optional)."),
    )
