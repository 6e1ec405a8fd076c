"""The original bug as a regression test, on the real Redis layer: a resubmission after a
rejection reaches a connected cashier as payment.verification_pending, resubmitted."""

import pytest
from channels.db import database_sync_to_async

from orders.services import order_reject, proof_submit
from tests.factories import UserFactory
from tests.notifications.wsclient import receive_frames, ws_connect
from tests.orders.conftest import make_order, png_bytes, upload

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


async def first_of_type(ws, type_: str, limit: int = 10) -> dict:
    for _ in range(limit):
        (frame,) = await receive_frames(ws, 1)
        if frame["type"] == type_:
            return frame
    raise AssertionError(f"no {type_} frame")


def _submit(order, waiter):
    return proof_submit(
        order_id=order.pk, upload=upload(png_bytes()), method="transfer", actor=waiter
    )


async def test_resubmission_reaches_the_connected_cashier(redis_layer, private_media):
    waiter = await database_sync_to_async(UserFactory)(roles=["waiter"])
    cashier = await database_sync_to_async(UserFactory)(roles=["cashier"])
    order = await database_sync_to_async(make_order)(waiter)
    cashier_ws, ok, _ = await ws_connect(user=cashier)
    waiter_ws, ok2, _ = await ws_connect(user=waiter)
    assert ok and ok2

    await database_sync_to_async(_submit)(order, waiter)
    frames = await receive_frames(cashier_ws, 2)
    pending = next(f for f in frames if f["type"] == "payment.verification_pending")
    assert (pending["payload"]["action"], pending["payload"]["attempt"]) == ("submitted", 1)

    await database_sync_to_async(order_reject)(
        order_id=order.pk, cashier=cashier, reason="Comprobante borroso"
    )
    rejected = await first_of_type(waiter_ws, "payment.rejected")
    assert rejected["payload"]["reason"] == "Comprobante borroso"

    await database_sync_to_async(_submit)(order, waiter)
    pending = await first_of_type(cashier_ws, "payment.verification_pending")
    assert pending["payload"]["action"] == "resubmitted"
    assert pending["payload"]["attempt"] == 2
    assert pending["payload"]["order"] == order.pk
    await cashier_ws.disconnect()
    await waiter_ws.disconnect()
