"""The permission matrix: for every URL pattern, who may use it and what everyone else gets.

Read by `tests/test_permissions.py`. One `Case` per request (a URL pattern, sometimes in
several variants: the caller's own object and somebody else's); each case says, for every
principal, the exact answer expected. A URL pattern that appears in Django's resolver but
not here makes the test suite fail: a new endpoint needs a decision in this table.

Paths and redirect targets are format strings over `World.fmt` (see the test module).
Device-token principals send their token as `?token=` on every request (that is how the
controller, kiosk and display pages take it); user principals log in with a session.
"""

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

# --- Principals ------------------------------------------------------------------------------

ANONYMOUS = "anonymous"
USERS = ("customer", "waiter", "kitchen", "cashier", "operator", "staff", "superuser")
# Device and screen tokens: a machine controller's `mdt_…`, a kiosk's `kst_…`, a signed
# `display:lobby` token (the public board) and a signed `payment:<ref>` token (what a kiosk
# page hands the anonymous customer to follow their payment).
TOKENS = ("machine_token", "kiosk_token", "display_token", "payment_token")
NO_USER = (ANONYMOUS, *TOKENS)
PRINCIPALS = (ANONYMOUS, *USERS, *TOKENS)


def holders(*roles: str) -> set[str]:
    """The user principals holding any of `roles`: staff always counts, superusers hold
    every role (core.roles)."""
    return {*roles, "staff", "superuser"}


# --- Expected answers ------------------------------------------------------------------------

LOGIN_PAGE = "<login>"  # 302 to /accounts/login/?next=<the requested full path>
ADMIN_LOGIN_PAGE = "<admin login>"  # 302 to /admin/login/?next=<the requested full path>


@dataclass(frozen=True)
class Expect:
    status: int
    # For 302: the exact Location (a format string over World.fmt); a trailing "*" makes
    # it a prefix; LOGIN_PAGE and ADMIN_LOGIN_PAGE: that login page with ?next= of the
    # requested path.
    location: str | None = None
    allowed: bool = True

    def __str__(self) -> str:
        verdict = "allow" if self.allowed else "deny"
        return f"{verdict} {self.status}" + (f" → {self.location}" if self.location else "")


OK = Expect(200)
CREATED = Expect(201)
FORBIDDEN = Expect(403, allowed=False)
NOT_FOUND = Expect(404, allowed=False)
LOGIN = Expect(302, LOGIN_PAGE, allowed=False)
ADMIN_LOGIN = Expect(302, ADMIN_LOGIN_PAGE, allowed=False)


def to(location: str) -> Expect:
    """Allowed: done, then redirected to a page of the app."""
    return Expect(302, location)


def refused(location: str) -> Expect:
    """Denied by the service: the page redirects with an error message and the action has
    no effect (the case's `effect` check proves it)."""
    return Expect(302, location, allowed=False)


def _table(default_user: Expect, no_user: Expect, allowed: dict[str, Expect], **exceptions):
    table = {p: no_user for p in NO_USER} | {u: default_user for u in USERS} | allowed
    unknown = set(exceptions) - set(PRINCIPALS)
    assert not unknown, unknown
    return table | exceptions


def everyone(expect: Expect = OK, **exceptions) -> dict[str, Expect]:
    return _table(expect, expect, {}, **exceptions)


def logged_in(expect: Expect, **exceptions) -> dict[str, Expect]:
    """A page for every logged-in user; the others go to the login page."""
    return _table(expect, LOGIN, {}, **exceptions)


def role_page(expect: Expect, *roles: str, others: Expect = FORBIDDEN, **exceptions):
    """A page for the holders of `roles`; other users get `others`; no user: login page."""
    return _table(others, LOGIN, {u: expect for u in holders(*roles)}, **exceptions)


def api(expect: Expect, *roles: str, others: Expect = FORBIDDEN, **exceptions):
    """A DRF endpoint behind IsAuthenticated (session first: unauthenticated is 403), for
    every user or, with `roles`, their holders only."""
    allowed = {u: expect for u in (holders(*roles) if roles else USERS)}
    return _table(others, FORBIDDEN, allowed, **exceptions)


def token_page(principal: str, expect: Expect = OK) -> dict[str, Expect]:
    """A page opened with one kind of device token; anything else is a 404."""
    return _table(NOT_FOUND, NOT_FOUND, {principal: expect})


def nobody(expect: Expect = NOT_FOUND) -> dict[str, Expect]:
    return everyone(expect)


def slot(name: str) -> str:
    """A placeholder for a World.fmt value in a path or a redirect target."""
    return "{" + name + "}"


# --- Request bodies and effects ----------------------------------------------------------------


def png_upload() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buffer, "PNG")
    return SimpleUploadedFile("comprobante.png", buffer.getvalue(), "image/png")


def proof_form(world) -> dict:
    return {"method": "transfer", "file": png_upload()}


def new_order_form(world) -> dict:
    from orders.models import Product, Table

    product = Product.objects.filter(active=True).first()
    return {
        "table": Table.objects.filter(active=True).first().pk,
        f"qty_{product.pk}": "1",
        "notes": "permission matrix",
        "form_key": str(uuid.uuid4()),
    }


def new_order_taken(world) -> bool:
    from orders.models import Order

    return Order.objects.filter(notes="permission matrix").exists()


def order_status_is(attr: str, status: str) -> Callable:
    def check(world) -> bool:
        from orders.models import Order

        return Order.objects.get(pk=world.fmt[attr]).status == status

    check.__name__ = f"{attr}_is_{status}"
    return check


def has_new_proof(attr: str) -> Callable:
    def check(world) -> bool:
        from orders.models import PaymentProof

        return PaymentProof.objects.filter(order_id=world.fmt[attr]).exists()

    check.__name__ = f"{attr}_has_a_proof"
    return check


def subscription_is_active(attr: str) -> Callable:
    def check(world) -> bool:
        from subscriptions.models import Subscription

        return Subscription.objects.filter(user_id=world.fmt[attr], status="active").exists()

    check.__name__ = f"{attr}_subscription_is_active"
    return check


# --- Checks on an allowed answer's content -----------------------------------------------------


def me_lists_own_audiences(response, world, principal) -> None:
    body = response.json()
    user = world.users[principal]
    assert body["id"] == user.pk
    assert set(body["audiences"]) == world.ws_audiences(principal)


def activity_shows_own_audiences(response, world, principal) -> None:
    assert set(response.context["audiences"]) == world.ws_audiences(principal)


def admin_index_lists_payments(response, world, principal) -> None:
    """Staff fix things from the admin (design: manual confirmation, replay, reprint…):
    the index must offer them the payments app, not "nothing to view or edit"."""
    apps = {app["app_label"]: app for app in response.context["app_list"]}
    assert "payments" in apps, sorted(apps)


def return_page_finds(owner: str | None) -> Callable:
    """The billing return page shows the payment only to the user who made it; anyone else
    gets the page without it (their own recent payments), never the other user's."""

    def check(response, world, principal) -> None:
        session = response.context["session"]
        if principal == owner:
            assert session is not None and session.user_id == world.users[principal].pk
        else:
            assert session is None

    return check


# --- Cases -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    route: str  # the URL pattern exactly as Django's resolver shows it
    method: str
    path: str
    expect: dict[str, Expect]
    variant: str = ""
    data: Callable | None = None  # (world) -> body
    body: str = "multipart"  # or "json"
    headers: Callable | None = None  # (world) -> headers
    effect: Callable | None = None  # (world) -> bool: did the action happen?
    check: Callable | None = None  # (response, world, principal) -> None, allowed rows only

    def __post_init__(self):
        assert set(self.expect) == set(PRINCIPALS), (self.route, set(PRINCIPALS) ^ set(self.expect))


# A customer's payment pages: (reference, variant, who may see them).
PAYMENT_PAGES = (
    ("customer_ref", "own", ("customer", "staff", "superuser")),
    ("other_ref", "other", ("staff", "superuser")),
)

# "Own" objects belong to the customer / the waiter principal; "other" ones to a second
# customer / waiter who is no principal, so for them only staff and superusers may pass.
CASES: list[Case] = [
    # --- config
    Case("", "GET", "/", everyone()),
    Case("healthz", "GET", "/healthz", everyone()),
    Case("favicon.ico", "GET", "/favicon.ico", everyone(to("/static/img/confirma.svg"))),
    Case("operations/", "GET", "/operations/", role_page(OK)),
    Case("operations/repair/", "POST", "/operations/repair/", role_page(to("/operations/"))),
    Case(
        "admin/",
        "GET",
        "/admin/",
        # The admin checks Django's is_staff flag, not the staff group: the staff
        # principal is a staff-group member with is_staff, like the demo's "staff" user.
        everyone(ADMIN_LOGIN, staff=OK, superuser=OK),
        check=admin_index_lists_payments,
    ),
    # --- payments pages
    Case("payments/", "GET", "/payments/", logged_in(OK)),
    Case("payments/topup/", "POST", "/payments/topup/", logged_in(to("/payments/"))),
    *[
        Case(
            "payments/<reference:reference>/" + suffix,
            "GET",
            f"/payments/{slot(ref)}/{suffix}",
            logged_in(NOT_FOUND, **dict.fromkeys(may_see, OK)),
            variant=variant,
        )
        for suffix in ("", "status/")
        for ref, variant, may_see in PAYMENT_PAGES
    ],
    *[
        Case(
            "payments/<reference:reference>/simulate/",
            "POST",
            f"/payments/{slot(ref)}/simulate/",
            # Simulation is off outside the demo: an error message, back to the payment.
            logged_in(NOT_FOUND, **dict.fromkeys(may_see, to(f"/payments/{slot(ref)}/"))),
            variant=variant,
        )
        for ref, variant, may_see in PAYMENT_PAGES
    ],
    # --- machines
    Case("machines/", "GET", "/machines/", logged_in(OK)),
    Case("machines/controller/", "GET", "/machines/controller/", token_page("machine_token")),
    Case(
        "machines/controller/state/",
        "GET",
        "/machines/controller/state/",
        token_page("machine_token"),
    ),
    Case("machines/<slug:code>/", "GET", "/machines/{machine_code}/", logged_in(OK)),
    Case("machines/<slug:code>/state/", "GET", "/machines/{machine_code}/state/", logged_in(OK)),
    Case(
        "machines/<slug:code>/start/",
        "POST",
        "/machines/{machine_code}/start/",
        # Nobody has credit: "not enough credit", back to the machine page.
        logged_in(to("/machines/{machine_code}/")),
        data=lambda w: {"minutes": "30", "method": "wallet", "key": uuid.uuid4().hex},
    ),
    Case(
        "machines/<slug:code>/cancel/",
        "POST",
        "/machines/{machine_code}/cancel/",
        # Nobody has a PIX waiting: "no payment of yours to cancel", back to the machine page.
        logged_in(to("/machines/{machine_code}/")),
        data=lambda w: {"reference": "ps_unknown"},
    ),
    # --- plans
    Case("billing/", "GET", "/billing/", logged_in(OK)),
    Case(
        "billing/checkout/",
        "POST",
        "/billing/checkout/",
        logged_in(to("{click_pay_url}?*")),
        data=lambda w: {"plan": w.fmt["plan"], "provider": "click", "key": uuid.uuid4().hex},
    ),
    *[
        Case(
            "billing/return/" + suffix,
            "GET",
            f"/billing/return/{suffix}?reference={slot(ref)}",
            logged_in(OK),
            variant="own" if ref == "customer_ref" else "other",
            check=return_page_finds("customer" if ref == "customer_ref" else None),
        )
        for suffix in ("", "state/")
        for ref in ("customer_ref", "other_ref")
    ],
    Case("billing/subscription/", "GET", "/billing/subscription/", logged_in(OK)),
    # --- kiosk (anonymous, kiosk token)
    Case("kiosk/", "GET", "/kiosk/", token_page("kiosk_token")),
    Case(
        "kiosk/service/<int:service_id>/",
        "GET",
        "/kiosk/service/{service}/",
        token_page("kiosk_token"),
    ),
    *[
        Case(
            "kiosk/wait/<reference:reference>/" + suffix,
            "GET",
            f"/kiosk/wait/{slot(ref)}/{suffix}",
            token_page("kiosk_token") if ref == "kiosk_ref" else nobody(),
            variant="own" if ref == "kiosk_ref" else "other kiosk",
        )
        for suffix in ("", "state/")
        for ref in ("kiosk_ref", "other_kiosk_ref")
    ],
    Case(
        "kiosk/wait/<reference:reference>/simulate/",
        "POST",
        "/kiosk/wait/{kiosk_ref}/simulate/",
        token_page("kiosk_token", to("/kiosk/wait/{kiosk_ref}/?token={kiosk_token}")),
        variant="own",
    ),
    Case(
        "kiosk/wait/<reference:reference>/simulate/",
        "POST",
        "/kiosk/wait/{other_kiosk_ref}/simulate/",
        nobody(),
        variant="other kiosk",
    ),
    # --- operator panel
    Case("operator/", "GET", "/operator/", role_page(OK, "operator")),
    Case("operator/panel/", "GET", "/operator/panel/", role_page(OK, "operator")),
    Case(
        "operator/desk/",
        "POST",
        "/operator/desk/",
        role_page(to("/operator/"), "operator"),
        data=lambda w: {"desk": "3"},
    ),
    Case("operator/call/", "POST", "/operator/call/", role_page(to("/operator/"), "operator")),
    Case(
        "operator/ticket/<int:ticket_id>/<str:action>/",
        "POST",
        "/operator/ticket/{ticket}/no_show/",
        role_page(to("/operator/"), "operator"),
    ),
    # --- display board (display token)
    Case("display/", "GET", "/display/", token_page("display_token")),
    Case("display/list/", "GET", "/display/list/", token_page("display_token")),
    Case("integration/", "GET", "/integration/", role_page(OK)),
    Case(
        "integration/fix/",
        "POST",
        "/integration/fix/",
        # A session not paid yet: the service refuses with a message, back to the page.
        role_page(to("/integration/")),
        data=lambda w: {"reference": w.fmt["kiosk_ref"], "reason": "permission matrix"},
    ),
    # --- restaurant
    Case("cashier/", "GET", "/cashier/", role_page(OK, "cashier")),
    Case(
        "cashier/<int:order_id>/<str:decision>/",
        "POST",
        "/cashier/{awaiting_order}/reject/",
        role_page(to("/cashier/"), "cashier"),
        data=lambda w: {"reason": "illegible"},
        effect=order_status_is("awaiting_order", "delivered"),
    ),
    Case("waiter/", "GET", "/waiter/", role_page(OK, "waiter")),
    Case("waiter/new/", "GET", "/waiter/new/", role_page(OK, "waiter")),
    Case(
        "waiter/new/",
        "POST",
        "/waiter/new/",
        role_page(to("/waiter/"), "waiter"),
        data=new_order_form,
        effect=new_order_taken,
    ),
    Case(
        "waiter/<int:order_id>/proof/",
        "POST",
        "/waiter/{delivered_order}/proof/",
        role_page(to("/waiter/"), "waiter"),
        variant="own",
        data=proof_form,
        effect=has_new_proof("delivered_order"),
    ),
    Case(
        "waiter/<int:order_id>/proof/",
        "POST",
        "/waiter/{other_delivered_order}/proof/",
        # Another waiter's order: the service refuses, the page says so; nothing stored.
        role_page(to("/waiter/"), "waiter", waiter=refused("/waiter/")),
        variant="other",
        data=proof_form,
        effect=has_new_proof("other_delivered_order"),
    ),
    # order_step checks no role itself: the service does, and a refusal is an error message
    # and a redirect (to `back`), never a 403; the effect check tells the rows apart.
    Case(
        "orders/<int:order_id>/step/<str:to>/",
        "POST",
        "/orders/{pending_order}/step/preparing/",
        role_page(to("/kitchen/"), "kitchen", others=refused("/kitchen/")),
        variant="kitchen",
        data=lambda w: {"back": "/kitchen/"},
        effect=order_status_is("pending_order", "preparing"),
    ),
    Case(
        "orders/<int:order_id>/step/<str:to>/",
        "POST",
        "/orders/{ready_order}/step/delivered/",
        role_page(to("/waiter/"), "waiter", others=refused("/waiter/")),
        variant="own",
        data=lambda w: {"back": "/waiter/"},
        effect=order_status_is("ready_order", "delivered"),
    ),
    Case(
        "orders/<int:order_id>/step/<str:to>/",
        "POST",
        "/orders/{other_ready_order}/step/delivered/",
        role_page(to("/waiter/"), others=refused("/waiter/")),
        variant="other",
        data=lambda w: {"back": "/waiter/"},
        effect=order_status_is("other_ready_order", "delivered"),
    ),
    Case("kitchen/", "GET", "/kitchen/", role_page(OK, "kitchen")),
    Case(
        "orders/proofs/<int:proof_id>/file/",
        "GET",
        "/orders/proofs/{proof}/file/",
        role_page(OK, "cashier", "waiter", others=NOT_FOUND),
        variant="own",
    ),
    Case(
        "orders/proofs/<int:proof_id>/file/",
        "GET",
        "/orders/proofs/{other_proof}/file/",
        role_page(OK, "cashier", others=NOT_FOUND),
        variant="other",
    ),
    # --- API
    Case("api/me/", "GET", "/api/me/", api(OK), check=me_lists_own_audiences),
    Case(
        "api/payment-sessions/",
        "POST",
        "/api/payment-sessions/",
        # AllowAny, but a subscription needs a login: the service answers 403 login_required.
        api(CREATED),
        body="json",
        data=lambda w: {
            "purpose": "subscription",
            "provider": "click",
            "params": {"plan": w.fmt["plan"]},
        },
        headers=lambda w: {"Idempotency-Key": uuid.uuid4().hex},
    ),
    *[
        Case(
            "api/payment-sessions/<reference:reference>/",
            "GET",
            f"/api/payment-sessions/{slot(ref)}/",
            # AllowAny: owner, staff, or the holder of the payment's token; else 404.
            everyone(NOT_FOUND, staff=OK, superuser=OK, **{who: OK for who in owners}),
            variant=variant,
        )
        for ref, variant, owners in (
            ("customer_ref", "own", ("customer",)),
            ("other_ref", "other", ()),
            ("kiosk_ref", "kiosk payment", ("payment_token",)),
        )
    ],
    Case("api/wallet/", "GET", "/api/wallet/", api(OK)),
    Case(
        "api/subscriptions/activations/",
        "POST",
        "/api/subscriptions/activations/",
        api(CREATED, "staff"),
        body="json",
        data=lambda w: {
            "user": str(w.fmt["other_customer"]),
            "plan": w.fmt["plan"],
            "days": 5,
            "reason": "permission matrix",
        },
        effect=subscription_is_active("other_customer"),
    ),
    Case("api/integration/status/", "GET", "/api/integration/status/", api(OK, "staff")),
    Case("api/tickets/", "GET", "/api/tickets/?status=paid,in_queue", api(OK, "operator")),
    Case("api/integration/test/", "POST", "/api/integration/test/", api(OK, "staff")),
    Case(
        "api/orders/<int:order_id>/proof/",
        "POST",
        "/api/orders/{delivered_order}/proof/",
        api(CREATED, "waiter"),
        variant="own",
        data=proof_form,
        effect=has_new_proof("delivered_order"),
    ),
    Case(
        "api/orders/<int:order_id>/proof/",
        "POST",
        "/api/orders/{other_delivered_order}/proof/",
        api(CREATED, "staff"),
        variant="other",
        data=proof_form,
        effect=has_new_proof("other_delivered_order"),
    ),
    Case(
        "api/orders/<int:order_id>/verify/",
        "POST",
        "/api/orders/{awaiting_order}/verify/",
        api(OK, "cashier"),
        effect=order_status_is("awaiting_order", "paid"),
    ),
    Case(
        "api/orders/<int:order_id>/reject/",
        "POST",
        "/api/orders/{awaiting_order}/reject/",
        api(OK, "cashier"),
        body="json",
        data=lambda w: {"reason": "illegible"},
        effect=order_status_is("awaiting_order", "delivered"),
    ),
    # drf-spectacular's views are AllowAny (SERVE_PERMISSIONS default): public today.
    Case("api/schema/", "GET", "/api/schema/", everyone()),
    Case("api/docs/", "GET", "/api/docs/", everyone()),
    # The event catalogue is documentation, public like the OpenAPI schema.
    Case("api/events/asyncapi.json", "GET", "/api/events/asyncapi.json", everyone()),
    # --- activity
    Case("activity/", "GET", "/activity/", logged_in(OK), check=activity_shows_own_audiences),
    Case(
        "activity/list/",
        "GET",
        "/activity/list/",
        logged_in(OK),
        check=activity_shows_own_audiences,
    ),
]

# Rows that show a permission bug in the product, as (route, variant, principal): reason.
# They run as strict xfails, so the fix turns them red until the entry is removed here.
KNOWN_BUGS: dict[tuple[str, str, str], str] = {}

# Signature-only endpoints: tested apart (a session never counts as authority).
WEBHOOK_ROUTES = (
    "webhooks/mercadopago/",
    "webhooks/kiosk/",
    "webhooks/click/prepare/",
    "webhooks/click/complete/",
    "webhooks/nowpayments/",
    "webhooks/coinbase/",
)

# URL patterns that need no row: Django's own login/logout and language switch, and the
# admin's pages beyond its index (the admin guards them all with the index's check).
EXCLUDED_PREFIXES = ("static/", "i18n/", "accounts/login/", "accounts/logout/")

# --- WebSocket audiences (/ws/events/) ----------------------------------------------------------
WS_ROUTE = "ws/events/"
# What each principal's connection receives; None: the connection is refused (close 4401).
# A kiosk's `kst_` token opens kiosk pages only: its customers follow a payment with the
# signed payment token the wait page hands out.
WS_AUDIENCES: dict[str, tuple[str, ...] | None] = {
    ANONYMOUS: None,
    "customer": ("user:{customer}",),
    "waiter": ("user:{waiter}", "role:waiter"),
    "kitchen": ("user:{kitchen}", "role:kitchen"),
    "cashier": ("user:{cashier}", "role:cashier"),
    "operator": ("user:{operator}", "role:operator"),
    "staff": (
        "user:{staff}",
        "role:cashier",
        "role:kitchen",
        "role:operator",
        "role:staff",
        "role:waiter",
    ),
    "superuser": (
        "user:{superuser}",
        "role:cashier",
        "role:kitchen",
        "role:operator",
        "role:staff",
        "role:waiter",
    ),
    "machine_token": ("machine:{machine}",),
    "kiosk_token": None,
    "display_token": ("display:lobby",),
    "payment_token": ("payment:{kiosk_ref}",),
}

# Connections beyond one principal each: (id, user principal or None, token key, audiences).
WS_EXTRA: list[tuple[str, str | None, str, tuple[str, ...] | None]] = [
    # A logged-in user holding a screen token gets both, and nothing more.
    ("customer+display_token", "customer", "display_token", ("user:{customer}", "display:lobby")),
    # Correctly signed, but naming audiences a token may never grant (users and roles
    # come only from a login).
    ("signed-token-claiming-role:staff", None, "role_claim_token", None),
    ("other-machine_token", None, "other_machine_token", ("machine:{other_machine}",)),
]

# Every audience an event is published to in the WebSocket test: each principal must
# receive exactly its own, replayed (`since=`) and live.
WS_PROBE_AUDIENCES = (
    "user:{customer}",
    "user:{other_customer}",
    "user:{waiter}",
    "user:{other_waiter}",
    "user:{kitchen}",
    "user:{cashier}",
    "user:{operator}",
    "user:{staff}",
    "user:{superuser}",
    "role:cashier",
    "role:kitchen",
    "role:operator",
    "role:staff",
    "role:waiter",
    "display:lobby",
    "display:hall",
    "payment:{kiosk_ref}",
    "payment:{other_kiosk_ref}",
    "machine:{machine}",
    "machine:{other_machine}",
)
