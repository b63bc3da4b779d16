"""Django settings for QuantumVault profit share.

Every setting comes from the environment with a working default, so a fresh clone runs on its
embedded default (SQLite, the django-q2 ORM broker, the local Solana node on 127.0.0.1:8899).
README.md lists every variable. Money settings are integers in USDC base units (6 decimals) or
lamports, never floats.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean environment variable ("1", "true", "yes", "on" are true)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    """Read an integer environment variable; a malformed value is a startup error."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    """Read a comma-separated environment variable into a list of non-empty strings."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Safe by default: DEBUG is off unless QV_DEBUG=1 (make run and the tests set it for their own
# processes). The development defaults below exist only with DEBUG on; with DEBUG off every secret
# is required and checked before anything starts (quantumvault.startup, after the engine block).
DEBUG = env_bool("QV_DEBUG", False)
SECRET_KEY = os.environ.get("QV_SECRET_KEY", "dev-only-insecure-secret-key-change-me" if DEBUG else "")
ALLOWED_HOSTS = env_list("QV_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    # before django_q: its ``qcluster`` command (a supervisor that stops on any SIGTERM) shadows
    # django-q2's
    "profitshare",
    "django_q",
    "csp",
    "django_ratelimit",
    "ninja",  # its Swagger UI assets are served from static files, never a CDN
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # NUL bytes -> 404, bodies over DATA_UPLOAD_MAX_MEMORY_SIZE -> 413, signed-in pages no-store,
    # database unavailable -> 503 with Retry-After
    "profitshare.middleware.RequestGuardMiddleware",
]

ROOT_URLCONF = "quantumvault.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "quantumvault.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("QV_DB_CONN_MAX_AGE", 0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default has several writers (web, qcluster workers, the demo market): WAL
    # lets readers run beside the one writer, IMMEDIATE takes the write lock at BEGIN (so a
    # transaction never fails upgrading a read lock: "database is locked"), and a writer waits
    # up to QV_SQLITE_TIMEOUT seconds for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "timeout": env_int("QV_SQLITE_TIMEOUT", 30),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

# --- HTTP security headers and cookies (README "Deployment"): a Content-Security-Policy of this
# origin only (every script is a static file: htmx, Chart.js and our own, no inline script or
# handler), and with DEBUG off HSTS, HTTPS redirects and Secure cookies. Behind a TLS-terminating
# proxy set QV_SECURE_PROXY_SSL_HEADER to the header it sets, e.g. "X-Forwarded-Proto: https"
# (only when the proxy overwrites that header on every request).
from csp.constants import NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
_proxy_ssl_header = os.environ.get("QV_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    _name, _, _value = _proxy_ssl_header.partition(":")
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + _name.strip().upper().replace("-", "_"), _value.strip())
SECURE_HSTS_SECONDS = env_int("QV_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("QV_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("QV_HSTS_PRELOAD", False)
# Submitting a domain to the browsers' HSTS preload list is its owner's decision (hard to undo):
# opt in with QV_HSTS_PRELOAD=1; until then check --deploy's reminder (W021) is silenced.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
SECURE_SSL_REDIRECT = env_bool("QV_SSL_REDIRECT", not DEBUG)
# Load balancers and Prometheus probe over the internal network, often without TLS.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("QV_SECURE_COOKIES", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Sign-in challenge rate limit (django-ratelimit on Django's cache): per client IP
# (RATELIMIT_IP_META_KEY: REMOTE_ADDR, or the header a trusted proxy sets). The cache is Redis
# when REDIS_URL is set (shared by every web process); without it each process counts its own
# clients (local memory), which django-ratelimit's checks flag: those two checks are silenced
# for the built-in backends we choose here (Django's RedisCache increments atomically).
QV_SIGNIN_CHALLENGE_RATE = os.environ.get("QV_SIGNIN_CHALLENGE_RATE", "10/m")
RATELIMIT_IP_META_KEY = os.environ.get("QV_CLIENT_IP_META_KEY", "REMOTE_ADDR")
if os.environ.get("REDIS_URL", ""):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                          "LOCATION": os.environ["REDIS_URL"], "KEY_PREFIX": "qv"}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    SILENCED_SYSTEM_CHECKS.append("django_ratelimit.E003")
SILENCED_SYSTEM_CHECKS.append("django_ratelimit.W001")

# --- Outages: seconds a client is told to wait (Retry-After of a 503) while the database cannot
# take a request.
QV_RETRY_AFTER_SECONDS = env_int("QV_RETRY_AFTER_SECONDS", 5)

# --- API docs: /api/v1/docs (Swagger UI, vendored by django-ninja) on with DEBUG, off in
# production unless QV_API_DOCS=1. The OpenAPI document itself stays at /api/v1/openapi.json.
QV_API_DOCS = env_bool("QV_API_DOCS", DEBUG)

# --- django-q2: the ORM broker by default, Redis when REDIS_URL is set --------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
# Seconds ``manage.py qcluster`` (the supervisor) waits for the cluster's clean stop before SIGKILL.
QV_Q_STOP_GRACE_SECONDS = env_int("QV_Q_STOP_GRACE_SECONDS", 8)
Q_CLUSTER: dict = {
    "name": "quantumvault",
    "workers": env_int("QV_Q_WORKERS", 2),
    "timeout": env_int("QV_Q_TIMEOUT", 120),
    "retry": env_int("QV_Q_RETRY", 180),
    "max_attempts": 1,
    "catch_up": False,
    "ack_failures": True,
    # successful task results kept (0: all, -1: none); failures are always kept
    "save_limit": env_int("QV_Q_SAVE_LIMIT", 1000),
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"

# --- Chain access ----------------------------------------------------------------------------------
# RPC endpoints, tried in order with failover (the local node by default).
QV_RPC_URLS = env_list("SOLANA_RPC_URLS", ["http://127.0.0.1:8899"])
# Drift is reached with driftpy on every cluster; the local node runs the real Drift program.
QV_DRIFT_ENV = os.environ.get("QV_DRIFT_ENV", "mainnet")
# The USDC mint (mainnet address; the local node creates a 6-decimal mint at the same address).
QV_USDC_MINT = os.environ.get("QV_USDC_MINT", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v")
QV_USDC_DECIMALS = 6
# Drift spot market index of USDC (0 on mainnet).
QV_DRIFT_USDC_MARKET_INDEX = env_int("QV_DRIFT_USDC_MARKET_INDEX", 0)
# Priority fee: compute-unit price in micro-lamports and the compute-unit limit of a payout.
QV_PRIORITY_FEE_MICROLAMPORTS = env_int("QV_PRIORITY_FEE_MICROLAMPORTS", 10_000)
QV_PAYOUT_COMPUTE_UNIT_LIMIT = env_int("QV_PAYOUT_COMPUTE_UNIT_LIMIT", 60_000)
# Compute-unit limit of Drift's settle and withdraw transactions (measured 47-73k on Drift v2.84.0).
QV_DRIFT_COMPUTE_UNIT_LIMIT = env_int("QV_DRIFT_COMPUTE_UNIT_LIMIT", 120_000)
# Compute-unit limit of the one-transaction payout (settle + withdraw + transfer; see benchmarks/drift.py).
QV_ATOMIC_COMPUTE_UNIT_LIMIT = env_int("QV_ATOMIC_COMPUTE_UNIT_LIMIT", 200_000)
# RPC timeouts and retry budget (seconds / attempts) for idempotent reads.
QV_RPC_TIMEOUT_SECONDS = env_int("QV_RPC_TIMEOUT_SECONDS", 10)
QV_RPC_MAX_ATTEMPTS = env_int("QV_RPC_MAX_ATTEMPTS", 4)
# Endpoints more than this many slots behind the highest are tried after the caught-up ones; their
# slots are read every QV_RPC_SLOT_PROBE_SECONDS (docs/design.md, "Expired only from a caught-up node").
QV_RPC_MAX_LAG_SLOTS = env_int("QV_RPC_MAX_LAG_SLOTS", 20)
QV_RPC_SLOT_PROBE_SECONDS = env_int("QV_RPC_SLOT_PROBE_SECONDS", 10)
# Agent wallet key encryption: comma-separated Fernet keys, newest first (MultiFernet).
QV_KEY_ENCRYPTION_KEYS = env_list("QV_KEY_ENCRYPTION_KEYS", [])
# Explorer link for signatures shown on pages (the {signature} placeholder is replaced).
QV_EXPLORER_TX_URL = os.environ.get(
    "QV_EXPLORER_TX_URL", "https://explorer.solana.com/tx/{signature}?cluster=custom"
)

# --- The engine ------------------------------------------------------------------------------------
# HMAC secrets of the intake API: the trading platform's and the admin routes'.
QV_INTAKE_SECRET = os.environ.get("QV_INTAKE_SECRET", "dev-intake-secret" if DEBUG else "")
QV_ADMIN_SECRET = os.environ.get("QV_ADMIN_SECRET", "dev-admin-secret" if DEBUG else "")
# Signed intake requests older than this are refused (seconds).
QV_INTAKE_MAX_SKEW_SECONDS = env_int("QV_INTAKE_MAX_SKEW_SECONDS", 300)
# An open IOU stops blocking the subscriber after this many days (it stays owed).
QV_IOU_TTL_DAYS = env_int("QV_IOU_TTL_DAYS", 7)
# Dust: shares below these (USDC base units) are carried on the subscription; the higher one
# applies when the creator's token account must be created first
# (docs/design.md, "Dust is carried").
QV_DUST_THRESHOLD = env_int("QV_DUST_THRESHOLD", 10_000)
QV_DUST_THRESHOLD_NEW_ATA = env_int("QV_DUST_THRESHOLD_NEW_ATA", 50_000)
# A creator's rate increase or policy change reaches existing subscriptions after this many days.
QV_FEE_CHANGE_TIMELOCK_DAYS = env_int("QV_FEE_CHANGE_TIMELOCK_DAYS", 7)
# IOU retry backoff: first retry after this many seconds, doubling up to the cap.
QV_IOU_RETRY_BASE_SECONDS = env_int("QV_IOU_RETRY_BASE_SECONDS", 60)
QV_IOU_RETRY_MAX_SECONDS = env_int("QV_IOU_RETRY_MAX_SECONDS", 6 * 3600)
# At most this many distributions (one per agent wallet) are paid together in one batch: each
# step costs a few RPC calls and statements for the whole batch (benchmarks/engine.py).
QV_ENGINE_BATCH_SIZE = env_int("QV_ENGINE_BATCH_SIZE", 128)
# A payout attempt unresolved for this long is checked against the chain by the resolver.
QV_STALE_ATTEMPT_SECONDS = env_int("QV_STALE_ATTEMPT_SECONDS", 90)
# Splits of the creator's share (docs/design.md, "Splits add up"): referral rates of levels 1-3
# and the platform fee, in basis points of the share, and the wallet the fee goes to. Checked in
# every mode: a bad value stops every entry point with one line naming it.
from quantumvault.startup import ConfigurationError, refuse_to_start, split_settings  # noqa: E402

try:
    QV_REFERRAL_BPS, QV_PLATFORM_FEE_BPS, QV_PLATFORM_TREASURY = split_settings(
        os.environ.get("QV_REFERRAL_BPS"), os.environ.get("QV_PLATFORM_FEE_BPS"), os.environ.get("QV_PLATFORM_TREASURY")
    )
except ConfigurationError as _split_problem:
    refuse_to_start(str(_split_problem))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("QV_LOG_LEVEL", "INFO")},
    # httpx logs every request at INFO; RPC traffic is counted in metrics, not logged.
    "loggers": {"httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# --- Operations: TTL, reconciliation, delinquency, alerts, notifications, metrics ---------------
# Admin alert rules: alert kind -> severity and whether admins get a Telegram
# message. ``QV_ALERT_RULES_JSON`` (a JSON object of the same shape) overrides kinds one by one;
# a kind missing here is a "warning" that notifies.
import json  # noqa: E402

QV_ALERT_RULES = {
    "iou_created": {"severity": "warning", "notify": True},
    "iou_expired": {"severity": "warning", "notify": True},
    "iou_voided": {"severity": "info", "notify": True},
    "invalid_creator_wallet": {"severity": "critical", "notify": True},
    "delinquency": {"severity": "critical", "notify": True},
    "reconciliation_mismatch": {"severity": "critical", "notify": True},
    "rpc_failure": {"severity": "critical", "notify": True},
    "landed_per_chain": {"severity": "critical", "notify": True},
}
QV_ALERT_RULES.update(json.loads(os.environ.get("QV_ALERT_RULES_JSON") or "{}"))
# Reconciliation: landed payouts resolved within this window are read back.
QV_RECONCILE_WINDOW_HOURS = env_int("QV_RECONCILE_WINDOW_HOURS", 72)
# Newest signatures read per agent wallet by reconciliation and delinquency (getSignaturesForAddress).
QV_CHAIN_SIGNATURE_LIMIT = env_int("QV_CHAIN_SIGNATURE_LIMIT", 1000)
# Telegram Bot API (unset token: outbox rows are stored, never sent).
QV_TELEGRAM_BOT_TOKEN = os.environ.get("QV_TELEGRAM_BOT_TOKEN", "")
QV_TELEGRAM_API_URL = os.environ.get("QV_TELEGRAM_API_URL", "https://api.telegram.org")
QV_TELEGRAM_ADMIN_CHAT_IDS = env_list("QV_TELEGRAM_ADMIN_CHAT_IDS", [])
QV_OUTBOX_MAX_ATTEMPTS = env_int("QV_OUTBOX_MAX_ATTEMPTS", 10)
QV_OUTBOX_RETRY_BASE_SECONDS = env_int("QV_OUTBOX_RETRY_BASE_SECONDS", 30)
# /healthz: seconds allowed to each check (database, broker, RPC).
QV_HEALTHZ_TIMEOUT_SECONDS = env_int("QV_HEALTHZ_TIMEOUT_SECONDS", 3)
# Repeated RPC failure: this many payouts owed for ``rpc_unavailable`` within the window alert admins.
QV_RPC_FAILURE_ALERT_THRESHOLD = env_int("QV_RPC_FAILURE_ALERT_THRESHOLD", 3)
QV_RPC_FAILURE_WINDOW_MINUTES = env_int("QV_RPC_FAILURE_WINDOW_MINUTES", 10)
# /metrics: with a token, only "Authorization: Bearer <token>" (or a staff session) may scrape;
# without one, loopback clients and staff only.
QV_METRICS_TOKEN = os.environ.get("QV_METRICS_TOKEN", "")
# Log lines as JSON (one object per line) or plain text.
QV_LOG_FORMAT = os.environ.get("QV_LOG_FORMAT", "json")
LOGGING["formatters"]["json"] = {"()": "profitshare.log_format.JsonFormatter"}
if QV_LOG_FORMAT == "json":
    LOGGING["handlers"]["console"]["formatter"] = "json"

# --- The demo market (``make run``): its pages and sign-ins exist only when it is on ---------------
# run_product sets QV_DEMO=1 for its own processes; QV_DEMO_SEED picks the demo world's wallets.
QV_DEMO = env_bool("QV_DEMO", False)
QV_DEMO_SEED = env_int("QV_DEMO_SEED", 1)

# --- Webhooks to the trading platform (README "Webhooks") and Telegram linking -------------------
# Comma-separated endpoints that receive every event (unset: no webhooks, nothing is written).
QV_WEBHOOK_URLS = env_list("QV_WEBHOOK_URLS", [])
# HMAC-SHA256 key of X-QV-Signature: required with endpoints, at least 32 bytes, not blank.
QV_WEBHOOK_SECRET = os.environ.get("QV_WEBHOOK_SECRET", "")


def _webhook_settings_error(urls: list[str], secret: str) -> str | None:
    """The one-line reason the webhook settings are refused, or None when they are usable."""
    from urllib.parse import urlsplit

    for url in urls:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"QV_WEBHOOK_URLS: {url!r} is not an http(s) URL"
    if urls and (not secret.strip() or len(secret.encode()) < 32):
        return "QV_WEBHOOK_SECRET must be set, not blank and at least 32 bytes long when QV_WEBHOOK_URLS is set"
    return None


if _webhook_problem := _webhook_settings_error(QV_WEBHOOK_URLS, QV_WEBHOOK_SECRET):
    raise SystemExit(f"configuration error: {_webhook_problem}")  # one line, no traceback
# Seconds one POST may take (connect + answer) before it counts as a failed attempt.
QV_WEBHOOK_TIMEOUT_SECONDS = env_int("QV_WEBHOOK_TIMEOUT_SECONDS", 10)
# Retry backoff: base x 2^(attempts-1) capped at the max, each delay jittered (50-100 %); a
# delivery still failing QV_WEBHOOK_GIVE_UP_HOURS after it was created is marked failed.
QV_WEBHOOK_RETRY_BASE_SECONDS = env_int("QV_WEBHOOK_RETRY_BASE_SECONDS", 30)
QV_WEBHOOK_RETRY_MAX_SECONDS = env_int("QV_WEBHOOK_RETRY_MAX_SECONDS", 3600)
QV_WEBHOOK_GIVE_UP_HOURS = env_int("QV_WEBHOOK_GIVE_UP_HOURS", 72)
# POSTs in flight at once per delivery task, and deliveries claimed per round. A round holds
# its rows locked until every answer is in: at most ceil(batch / concurrency) x the timeout
# (4 x 10 s by default), well inside QV_Q_TIMEOUT.
QV_WEBHOOK_CONCURRENCY = env_int("QV_WEBHOOK_CONCURRENCY", 16)
QV_WEBHOOK_BATCH_SIZE = env_int("QV_WEBHOOK_BATCH_SIZE", 64)
# Telegram linking: the bot's username (for the t.me link on the dashboard) and how long a
# one-time link code stays valid (minutes).
QV_TELEGRAM_BOT_USERNAME = os.environ.get("QV_TELEGRAM_BOT_USERNAME", "")
QV_TELEGRAM_LINK_CODE_MINUTES = env_int("QV_TELEGRAM_LINK_CODE_MINUTES", 30)
# A delivery that gave up alerts admins (critical unless QV_ALERT_RULES_JSON says otherwise).
QV_ALERT_RULES.setdefault("webhook_failed", {"severity": "critical", "notify": True})

# --- Production start-up check: with DEBUG off, a missing or weak secret (or the demo) stops every
# entry point (web, qcluster, management commands) with one line naming it.
if not DEBUG:
    from quantumvault.startup import production_problem  # noqa: E402

    _problem = production_problem(
        secret_key=SECRET_KEY,
        intake_secret=QV_INTAKE_SECRET,
        admin_secret=QV_ADMIN_SECRET,
        key_encryption_keys=QV_KEY_ENCRYPTION_KEYS,
        demo=QV_DEMO,
    )
    if _problem:
        refuse_to_start(_problem)
