"""Admin building blocks shared by the apps: audit trails are shown, never edited."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _

from config.errors import ConfirmaError


class ReadOnlyInline(admin.TabularInline):
    """An inline that lists rows of an append-only trail (set `fields`)."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class AppendOnlyAdmin(admin.ModelAdmin):
    """An admin for an append-only log: readable and searchable, never changed."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}), max_length=2000
    )


def confirm_with_form(modeladmin, request, queryset, *, title, form_class, apply):
    """The body of an admin action that first asks for a form (at least a reason), then
    calls `apply(obj, cleaned_data)` for each selected object; domain errors become
    messages. Returns the form page, or None once applied."""
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        done = 0
        for obj in queryset:
            try:
                apply(obj, form.cleaned_data)
                done += 1
            except ConfirmaError as exc:
                modeladmin.message_user(request, f"{obj}: {exc.message}", messages.ERROR)
        modeladmin.message_user(request, _("%(n)d done.") % {"n": done})
        return None
    return render(
        request,
        "admin/confirma_reason.html",
        {
            "title": title,
            "form": form,
            "queryset": queryset,
            "action": request.POST.get("action"),
            "opts": modeladmin.model._meta,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        },
    )
