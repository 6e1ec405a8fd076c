"""What a login locked by django-axes answers (AXES_LOCKOUT_CALLABLE).

Axes refuses a login, even with the right password, once LOGIN_FAILURE_LIMIT attempts have
failed; both the login page and the admin's login go through it. The answer is the login
page again, status 429, saying why and for how long, in the visitor's language.
"""

import math

from axes.helpers import get_cool_off
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext


def lockout_message(request) -> str:
    cool_off = get_cool_off(request)
    if cool_off is None:
        return _(
            "Too many failed login attempts. For your security, logging in is blocked until "
            "a staff member lifts the block."
        )
    minutes = max(1, math.ceil(cool_off.total_seconds() / 60))
    return ngettext(
        "Too many failed login attempts. For your security, logging in is paused for "
        "%(minutes)d minute after the last failed attempt.",
        "Too many failed login attempts. For your security, logging in is paused for "
        "%(minutes)d minutes after the last failed attempt.",
        minutes,
    ) % {"minutes": minutes}


def lockout_response(request, original_response=None, credentials=None):
    """The login page with the lockout explained (429), for the site's and the admin's
    login alike; the form posts back to the page that was locked.

    Built here rather than from `original_response`: axes passes none on its asynchronous
    path (daphne), and the form the view rendered only says the password was wrong."""
    username = request.POST.get("username", "")
    context = {
        "form": AuthenticationForm(request, initial={"username": username}),
        "next": request.POST.get("next") or request.GET.get("next", ""),
        "lockout_message": lockout_message(request),
    }
    return render(request, "registration/login.html", context, status=429)
