"""The "staff" group gets the admin permissions it needs to fix things (design: manual
confirmation and activation with a reason, reprint, webhook replay, re-run fulfilment,
resolving alerts, keeping the catalogue and the devices up to date).

What each model gets, by what the model is:

- audit trails, logs and money records: view only. Nobody edits or deletes the evidence
  of what happened (audits, events, ledger, deliveries' own fields, proofs, print jobs…);
  their admins are read-only anyway, the permissions say the same.
- records staff act on: view and change. The admin actions that fix them ask for the
  "change" permission and go through the services, which write the audit rows; their
  fields are read-only in the admin. No add (they come from payments and webhooks), no
  delete (they are the history).
- configuration (coupons, plans, machines and their prices, services, printers, kiosks,
  tables, products): view, add and change; delete only where the history holds on to the
  row with a PROTECT foreign key, so a delete can only remove a mistake nobody used
  (anything in use is switched off with its "active" flag instead).
- orders are composed in the admin: add and change orders, edit their lines.

Users, groups and API tokens stay with superusers: granting them would let a staff member
raise their own rights. A model added later needs a migration of its own here.
"""

from django.db import migrations

from core import staff_group as _staff

VIEW = ("view",)
CHANGE = ("view", "change")
CONFIGURE = ("view", "add", "change")
CONFIGURE_DELETE = ("view", "add", "change", "delete")

STAFF_PERMISSIONS = {
    "config": {"workerheartbeat": VIEW},
    "notifications": {"event": VIEW, "alert": CHANGE},
    "payments": {
        "paymentsession": CHANGE,
        "paymentaudit": VIEW,
        "webhookdelivery": CHANGE,
        "coupon": CONFIGURE_DELETE,
        "couponredemption": VIEW,
        "walletaccount": VIEW,
        "ledgerentry": VIEW,
    },
    "subscriptions": {
        "machine": CONFIGURE_DELETE,
        "priceoption": CONFIGURE_DELETE,
        "usagesession": CHANGE,
        "usageevent": VIEW,
        "plan": CONFIGURE,
        "subscription": CHANGE,
        "subscriptionevent": VIEW,
    },
    "tickets": {
        "service": CONFIGURE_DELETE,
        "ticket": CHANGE,
        "printer": CONFIGURE_DELETE,
        "printjob": VIEW,
        "ticketevent": VIEW,
        "kiosk": CONFIGURE,
    },
    "orders": {
        "table": CONFIGURE_DELETE,
        "product": CONFIGURE_DELETE,
        "order": CONFIGURE,
        "orderline": CONFIGURE_DELETE,
        "paymentproof": VIEW,
    },
}


def grant(apps, schema_editor):
    _staff.grant(apps, STAFF_PERMISSIONS)


def revoke(apps, schema_editor):
    _staff.revoke(apps, STAFF_PERMISSIONS)


class Migration(migrations.Migration):
    dependencies = [
        ("config", "0002_roles"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("notifications", "0002_alert"),
        ("payments", "0002_webhookdelivery_resolved_at"),
        ("subscriptions", "0002_plans_and_subscriptions"),
        ("tickets", "0001_initial"),
        ("orders", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
