"""A page and the fragment of it that htmx re-fetches, served by one view.

The view renders with `render_page(request, template, fragment, context)`. The fragment
alone goes back when htmx asks (`HX-Request`), or when the URL is the fragment's own —
`path("…/state/", fragment_view(views.page), …)` — which live pages re-fetch on events."""

import functools

from django.shortcuts import render


def render_page(request, template: str, fragment: str, context: dict, **kwargs):
    """`template`, or only `fragment` (the part of it that is re-fetched) for htmx and for
    URLs made with `fragment_view`."""
    partial = request.htmx or getattr(request, "fragment_only", False)
    return render(request, fragment if partial else template, context, **kwargs)


def fragment_view(view):
    """`view` answering with its fragment alone (for a URL of its own)."""

    @functools.wraps(view)
    def fragment(request, *args, **kwargs):
        request.fragment_only = True
        return view(request, *args, **kwargs)

    return fragment
