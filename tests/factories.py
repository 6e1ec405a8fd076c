import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

PASSWORD = "a-test-password-42"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            for role in extracted:
                self.groups.add(Group.objects.get_or_create(name=role)[0])
        if create:
            self.save()


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "notifications.Event"

    audience = "role:staff"
    type = "test.event"
    payload = factory.Dict({"n": 1})


class CouponFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "payments.Coupon"

    code = factory.Sequence(lambda n: f"SAVE{n}")
    kind = "percent"
    value = 10


class MachineFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "subscriptions.Machine"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Machine {n}")
    code = factory.Sequence(lambda n: f"m-{n}")
    location = "Test street"

    @factory.post_generation
    def options(self, create, extracted, **kwargs):
        if create:
            from subscriptions.models import PriceOption

            for minutes, price in extracted or [(30, "8.00"), (60, "14.00")]:
                PriceOption.objects.create(machine=self, minutes=minutes, price=price)
