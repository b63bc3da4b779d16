"""What the page views share: the signed-in wallet in the session, and rendering a full page
or, for an htmx request aimed at one fragment, only that fragment."""

from __future__ import annotations

import ipaddress
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

SESSION_WALLET = "qv_wallet"


def current_wallet(request) -> str | None:
    """The Solana address the session signed in with (Sign-In With Solana), or None."""
    return request.session.get(SESSION_WALLET)


def sign_in_wallet(request, address: str) -> None:
    """Attach a verified wallet address to a fresh session key (no session fixation)."""
    request.session.cycle_key()
    request.session[SESSION_WALLET] = address


def is_loopback(request) -> bool:
    """True when the request's peer (``REMOTE_ADDR``) is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def development_only(request) -> None:
    """Raise ``Http404`` unless DEBUG is on and the client is on this machine (loopback): what
    the sign-ins without a wallet signature (the development sign-in, the demo's) require."""
    if not settings.DEBUG or not is_loopback(request):
        raise Http404("no such page")


def wallet_required(view):
    """Redirect to the sign-in page (with ``next``) unless a wallet is signed in; passes the
    address to the view as ``wallet``."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        wallet = current_wallet(request)
        if wallet is None:
            return redirect(f"{reverse('pages:signin')}?{urlencode({'next': request.get_full_path()})}")
        return view(request, *args, wallet=wallet, **kwargs)

    return wrapper


def history_context(request, page: dict, table) -> dict:
    """What a keyset-paginated history's templates (``_keyset_history.html``,
    ``_keyset_rows.html``) render: ``page`` (a selector's ``{"filter", "valid", "rows",
    "older", "newer"}``), its ``table``, the filter's form and fields, and ``filter_query`` (the
    query string without the cursors, for the pager and the CSV link)."""
    params = request.GET.copy()
    for key in ("after", "before"):
        params.pop(key, None)
    return {
        "history": page,
        "table": table,
        "filter_form": page["filter"].form,
        "filter_fields": form_fields_html(page["filter"].form),
        "filter_query": params.urlencode(),
    }


def render_fragment_or_page(request, page: str, fragments: dict[str, str], context: dict, status: int = 200):
    """Render ``page``, or the fragment template of ``fragments[target]`` when the request is
    an htmx request whose ``HX-Target`` is ``target`` (no-JavaScript requests get the page)."""
    target = request.htmx.target if request.htmx else None
    template = fragments.get(target, page) if target and not request.htmx.boosted else page
    return render(request, template, context, status=status)


_FIELDS_CACHE: dict[tuple, SafeString] = {}
_FIELDS_CACHE_SIZE = 1024


def form_fields_html(form) -> SafeString:
    """``<label>{label} {widget}</label>`` for every field of a filter form, as the template
    loop ``{% for field in form %}`` renders them. Django renders each widget (and each option
    of a select) through a template, a visible share of a page's time; the result depends only
    on the form's class, its fields' choices, what was submitted and which fields have errors,
    so it is kept per such key (at most ``_FIELDS_CACHE_SIZE`` entries, oldest dropped)."""
    fields = list(form)
    key = (  # django-filter builds a new form class per FilterSet: the class is keyed by name
        f"{type(form).__module__}.{type(form).__qualname__}", form.prefix, form.is_bound,
        tuple(
            (
                bound.name,
                repr(bound.value()),
                tuple(getattr(bound.field, "choices", ()) if not hasattr(getattr(bound.field, "choices", None), "queryset")
                      else ()),
                bool(form.is_bound and bound.errors),
            )
            for bound in fields
        ),
    )
    cacheable = not any(hasattr(getattr(b.field, "choices", None), "queryset") for b in fields)
    html = _FIELDS_CACHE.get(key) if cacheable else None
    if html is None:
        html = format_html_join("", "<label>{} {}</label>", ((bound.label, bound) for bound in fields))
        if cacheable:
            if len(_FIELDS_CACHE) >= _FIELDS_CACHE_SIZE:
                _FIELDS_CACHE.pop(next(iter(_FIELDS_CACHE)))
            _FIELDS_CACHE[key] = html
    return html
