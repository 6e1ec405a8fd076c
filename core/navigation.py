"""The pages each role may use, shown on the home page and in the navigation.

Apps add their pages from `AppConfig.ready()` with `page_register`. A page without roles
is a customer page (every logged-in user may open it); `everyone=True` marks one that
belongs in everybody's navigation. The navigation shows each person their own pages:
customers their customer pages, people with a role the pages of their roles, staff the
staff pages — not every page they are allowed to open (the home page lists those).
"""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse

from core.roles import has_role, user_roles


@dataclass(frozen=True)
class Page:
    url_name: str
    label: str  # lazily translated
    description: str = ""
    roles: tuple[str, ...] = ()  # empty: every logged-in user; "staff" always may
    order: int = 100
    badge: object = None  # optional callable () -> int shown next to the link
    everyone: bool = False  # in every logged-in user's navigation, whatever their role

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


def nav_pages_for(user) -> list[Page]:
    """The pages in `user`'s navigation: staff → staff pages; a role → that role's pages;
    no role → customer pages; plus the pages marked `everyone`."""
    roles = user_roles(user)
    wanted = {"staff"} if "staff" in roles else roles

    def own(page: Page) -> bool:
        if page.everyone:
            return True
        if not page.roles:
            return not roles
        return bool(set(page.roles) & wanted)

    return [page for page in pages_for(user) if own(page)]
