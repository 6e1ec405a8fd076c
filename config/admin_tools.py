"""Admin building blocks shared by the apps: audit trails are shown, never edited."""

from django.contrib import admin


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
