from django.contrib import admin

from core.admin_tools import ReadOnlyInline, StatusAuditAdmin
from orders.models import (
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    PaymentProof,
    Product,
    Table,
)
from orders.services import order_entered_in_admin


@admin.register(Table)
class TableAdmin(admin.ModelAdmin):
    list_display = ("name", "active")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "active")
    list_editable = ("price", "active")


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 1


class PaymentProofInline(ReadOnlyInline):
    model = PaymentProof
    fields = (
        "attempt",
        "method",
        "status",
        "uploaded_by",
        "reviewed_by",
        "reviewed_at",
        "reason",
        "payment_session",
    )
    ordering = ("-attempt", "-id")


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = (
        "created_at",
        "action",
        "from_status",
        "to_status",
        "source",
        "actor",
        "reason",
        "data",
    )
    ordering = ("-created_at", "-id")


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "table",
        "waiter",
        "status",
        "payment_method",
        "rejections",
        "created_by",
        "updated_at",
    )
    list_filter = ("status", "payment_method")
    search_fields = ("id", "table__name", "waiter__username")
    ordering = ("-created_at", "-id")
    readonly_fields = ("status", "rejections", "created_by", "created_at")
    inlines = [OrderLineInline, PaymentProofInline, OrderEventInline]

    def get_inlines(self, request, obj):
        # A new order has no history yet.
        return self.inlines if obj else [OrderLineInline, PaymentProofInline]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user  # who entered it, kept even if the waiter changes
        super().save_model(request, obj, form, change)
        if not change:
            order_entered_in_admin(order=obj, actor=request.user)


@admin.register(OrderEvent)
class OrderEventAdmin(StatusAuditAdmin):
    status_choices = OrderStatus
    list_display = (
        "created_at",
        "order",
        "action",
        "status_before",
        "status_after",
        "source",
        "actor",
    )
    list_filter = ("action", "source")
    search_fields = ("=order__id", "reason")
    ordering = ("-created_at", "-id")
