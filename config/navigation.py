"""The pages each role may use, shown on the home page and in the navigation.

Apps add their pages from `AppConfig.ready()` with `page_register`.
"""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from config.roles import has_role


@dataclass(frozen=True)
class Page:
    url_name: str
    label: str  # lazily translated
    description: str = ""
    roles: tuple[str, ...] = ()  # empty: every logged-in user; "staff" always may
    order: int = 100
    badge: object = None  # optional callable () -> int shown next to the link

    @property
    def badge_count(self) -> int | None:
        return self.badge() if self.badge else None

    @property
    def slug(self) -> str:
        return self.url_name.replace(":", "-")

    def visible_to(self, user) -> bool:
        if not user.is_authenticated:
            return False
        return not self.roles or has_role(user, *self.roles)

    @property
    def url(self) -> str:
        try:
            return reverse(self.url_name)
        except NoReverseMatch:
            return ""


_PAGES: dict[str, Page] = {}


def page_register(page: Page) -> None:
    _PAGES[page.url_name] = page


def pages_for(user) -> list[Page]:
    return sorted(
        (p for p in _PAGES.values() if p.visible_to(user) and p.url),
        key=lambda p: (p.order, str(p.label)),
    )
