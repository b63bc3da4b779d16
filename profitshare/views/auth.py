"""Sign-In With Solana for creators and subscribers, a DEBUG-only development sign-in, and
sign-out. Admins sign in with Django's own auth (``/admin/login/``)."""

from __future__ import annotations

from django.conf import settings
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django_ratelimit.core import is_ratelimited

from profitshare.services import siws
from profitshare.services.errors import InvalidInput
from profitshare.views.common import (
    SESSION_WALLET,
    current_wallet,
    development_only,
    is_loopback,
    sign_in_wallet,
)


def _dev_signin_offered(request) -> bool:
    """The development sign-in form is shown where it works: DEBUG on, a loopback client."""
    return settings.DEBUG and is_loopback(request)


def _next_url(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        return target
    return "/"


@require_GET
def home(request):
    """The landing page: what each audience can open, and the signed-in wallet."""
    return render(request, "profitshare/home.html", {"wallet": current_wallet(request)})


@require_GET
def signin(request):
    """Step 1: the wallet address (filled in by the wallet button, or typed)."""
    return render(request, "profitshare/signin.html", {"next": _next_url(request), "debug": _dev_signin_offered(request)})


@require_POST
def challenge(request):
    """Step 2: issue a nonce for the address and show the message to sign. At most
    ``QV_SIGNIN_CHALLENGE_RATE`` challenges per client IP (e.g. ``10/m``): beyond it a 429 with
    ``Retry-After`` and nothing stored."""
    if is_ratelimited(request, group="siws-challenge", key="ip", rate=settings.QV_SIGNIN_CHALLENGE_RATE,
                      method="POST", increment=True):
        context = {"next": _next_url(request), "debug": _dev_signin_offered(request),
                   "error": "Too many sign-in requests from this address; wait a minute and try again.",
                   "address": request.POST.get("address", "")}
        response = render(request, "profitshare/signin.html", context, status=429)
        response["Retry-After"] = "60"
        return response
    try:
        nonce = siws.issue_challenge(
            address=request.POST.get("address", ""),
            domain=request.get_host(),
            uri=request.build_absolute_uri("/"),
        )
    except InvalidInput as exc:
        context = {"next": _next_url(request), "debug": _dev_signin_offered(request), "error": exc.message,
                   "address": request.POST.get("address", "")}
        return render(request, "profitshare/signin.html", context, status=400)
    context = {"challenge": nonce, "message": siws.build_message(nonce), "next": _next_url(request)}
    return render(request, "profitshare/signin_sign.html", context)


@require_POST
def verify(request):
    """Step 3: check the signature (ed25519, solders) and the nonce; sign the session in."""
    try:
        address = siws.verify_sign_in(
            nonce=request.POST.get("nonce", ""), signature=request.POST.get("signature", ""),
            domain=request.get_host(),
        )
    except InvalidInput as exc:
        context = {"next": _next_url(request), "debug": _dev_signin_offered(request), "error": exc.message}
        return render(request, "profitshare/signin.html", context, status=400)
    sign_in_wallet(request, address)
    return redirect(_next_url(request))


def dev_signin(request):
    """Development only: sign in as any address without a signature (POST). A 404 for every
    method unless DEBUG is on and the client is on this machine (loopback)."""
    development_only(request)
    if request.method != "POST":
        return redirect("pages:signin")
    try:
        address = siws.parse_wallet_address(request.POST.get("address", ""))
    except InvalidInput as exc:
        context = {"next": _next_url(request), "debug": True, "error": exc.message}
        return render(request, "profitshare/signin.html", context, status=400)
    sign_in_wallet(request, address)
    return redirect(_next_url(request))


@require_POST
def signout(request):
    """Forget the signed-in wallet (the whole session)."""
    if SESSION_WALLET in request.session:
        request.session.flush()
    return redirect("/")
