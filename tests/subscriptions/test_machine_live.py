"""The original bug, end to end on the real Redis layer: a PIX payment for a usage session
(no wallet top-up anywhere) reaches the customer's open WebSocket."""

import uuid

import pytest
from channels.db import database_sync_to_async
from django.test import Client

from subscriptions.services.machines import machine_device_token_rotate, machine_session_buy
from tests.factories import MachineFactory, UserFactory
from tests.notifications.wsclient import receive_frames, ws_connect
from tests.payments.conftest import post_mp

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def _buy(customer, machine):
    return machine_session_buy(
        customer=customer,
        machine_code=machine.code,
        minutes=30,
        method="pix",
        idempotency_key=uuid.uuid4().hex,
    )


def _approve(mp_fake, payment):
    mp_fake.set_status(payment.provider_payment_id, "approve")
    return post_mp(Client(), mp_fake.notification(payment.provider_payment_id)).status_code


async def test_signed_pix_notification_activates_and_reaches_the_open_page(redis_layer, mp_fake):
    customer = await database_sync_to_async(UserFactory)()
    machine = await database_sync_to_async(MachineFactory)()
    token = await database_sync_to_async(machine_device_token_rotate)(machine=machine)
    payment = await database_sync_to_async(_buy)(customer, machine)
    page, ok, _ = await ws_connect(user=customer)
    controller, ok2, _ = await ws_connect(token=token)
    assert ok and ok2

    assert await database_sync_to_async(_approve)(mp_fake, payment) == 200

    frames = await receive_frames(page, 2)
    by_type = {f["type"]: f for f in frames}
    assert set(by_type) == {"payment.confirmed", "machine_session.activated"}
    assert by_type["payment.confirmed"]["payload"]["reference"] == payment.reference
    assert by_type["payment.confirmed"]["payload"]["purpose"] == "machine_session"
    (switch_on,) = await receive_frames(controller, 1)
    assert switch_on["type"] == "machine.activate"
    assert await page.receive_nothing(timeout=0.3)
    await page.disconnect()
    await controller.disconnect()


async def test_device_token_of_another_machine_sees_nothing(redis_layer, mp_fake):
    customer = await database_sync_to_async(UserFactory)()
    machine, other = (
        await database_sync_to_async(MachineFactory)(),
        await database_sync_to_async(MachineFactory)(),
    )
    other_token = await database_sync_to_async(machine_device_token_rotate)(machine=other)
    payment = await database_sync_to_async(_buy)(customer, machine)
    controller, ok, _ = await ws_connect(token=other_token)
    assert ok
    await database_sync_to_async(_approve)(mp_fake, payment)
    assert await controller.receive_nothing(timeout=0.5)
    await controller.disconnect()
