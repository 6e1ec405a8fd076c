from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _

from core.navigation import Page, page_register
from notifications.audiences import audience_machine
from notifications.tokens import device_token_resolver_register


class SubscriptionsConfig(AppConfig):
    name = "subscriptions"
    verbose_name = _("Machines and subscriptions")

    def ready(self) -> None:
        # Here, not at the top: these modules import models, which exist only once every
        # app is registered (Django calls ready() then).
        from core.demo import demo_register
        from payments.registry import purpose_register
        from payments.services.monitor import user_section_register
        from subscriptions.demo import machines_demo, plans_demo
        from subscriptions.selectors import subscription_user_section
        from subscriptions.services.machines import (
            MachineSessionPurpose,
            machine_for_device_token,
        )
        from subscriptions.services.plans import SubscriptionPurpose

        user_section_register(subscription_user_section)
        purpose_register(MachineSessionPurpose())
        purpose_register(SubscriptionPurpose())
        device_token_resolver_register(
            lambda token: (
                [audience_machine(m.pk)] if (m := machine_for_device_token(token)) else None
            )
        )
        page_register(Page("machines", _("Machines"), _("Pay for time on a machine."), order=10))
        page_register(Page("billing", _("Plans"), _("Subscribe to a plan or see yours."), order=15))
        demo_register(machines_demo)
        demo_register(plans_demo)
