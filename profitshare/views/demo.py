"""``/demo/``: sign in as one of the demo market's wallets, and the staged cases as they stand.

Only when the demo is on (``QV_DEMO=1``, which ``make run`` sets for its own processes; settings
refuse it with DEBUG off), DEBUG is on and the client is on this machine (loopback): otherwise
every method is a 404. Signing in goes through the same Sign-In With Solana code as a wallet: the server
issues a challenge for the chosen demo address (``siws.issue_challenge``), signs the exact message
with that demo wallet's key (derived from the demo seed; ``profitshare.demo.wallets``) and checks
it with ``siws.verify_sign_in`` before the session is signed in. The demo admin (a Django staff
user ``demo-admin`` without a usable password, created on first use) opens the console.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model, login
from django.http import Http404
from django.shortcuts import redirect, render

from profitshare.demo.status import case_views, demo_wallets, split_facts, wallet_keypair
from profitshare.demo.wallets import CREATOR, REFERRER, SUBSCRIBER, demo_enabled, demo_seed
from profitshare.services import siws
from profitshare.services.errors import InvalidInput
from profitshare.views.common import current_wallet, development_only, sign_in_wallet

#: Where a demo wallet lands once signed in, by role.
LANDING = {CREATOR: "pages:creator", REFERRER: "pages:earnings", SUBSCRIBER: "pages:subscriber"}


def demo_page(request):
    """GET: the demo wallets (creators, referrers, subscribers), the demo's splits and the staged
    cases. POST ``address``: sign in as that demo wallet through SIWS, then go to its page (a
    creator's dashboard, a referrer's ``/earnings/``, a subscriber's trades). 404 when the demo
    is off or the address is not a demo wallet; 400 if verification refuses the signature."""
    if not demo_enabled():
        raise Http404("no such page")
    development_only(request)
    seed = demo_seed()
    if request.method == "POST" and request.POST.get("admin"):
        return _admin_sign_in(request)
    if request.method == "POST":
        found = wallet_keypair(seed, request.POST.get("address", ""))
        if found is None:
            raise Http404("not a demo wallet")
        role, keypair = found
        challenge = siws.issue_challenge(
            address=str(keypair.pubkey()), domain=request.get_host(), uri=request.build_absolute_uri("/")
        )
        signature = keypair.sign_message(siws.build_message(challenge).encode("utf-8"))
        try:
            address = siws.verify_sign_in(nonce=challenge.nonce, signature=str(signature), domain=request.get_host())
        except InvalidInput as exc:
            return render(request, "profitshare/demo/page.html", _context(request, seed, exc.message), status=400)
        sign_in_wallet(request, address)
        return redirect(LANDING[role])
    if request.method != "GET":
        raise Http404("no such page")
    return render(request, "profitshare/demo/page.html", _context(request, seed))


DEMO_ADMIN = "demo-admin"


def _admin_sign_in(request):
    """Sign the session in as the demo's staff user (no usable password: only this page, only
    with the demo on, signs it in) and open the console."""
    user, created = get_user_model().objects.get_or_create(
        username=DEMO_ADMIN, defaults={"is_staff": True, "email": ""}
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    if not user.is_staff or not user.is_active:
        raise Http404("the demo admin is not a staff user")
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    return redirect("pages:console")


def _context(request, seed: int, error: str = "") -> dict:
    wallets = demo_wallets(seed)
    return {
        "seed": seed,
        "creators": [w for w in wallets if w.role == CREATOR],
        "referrers": [w for w in wallets if w.role == REFERRER],
        "subscribers": [w for w in wallets if w.role == SUBSCRIBER],
        "splits": split_facts(seed),
        "cases": case_views(seed),
        "wallet": current_wallet(request),
        "error": error,
    }
