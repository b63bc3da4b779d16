"""One redaction of RPC endpoint URLs, used by every place that shows an endpoint: ``/healthz``
(public), ``/console/health/``, metrics labels, alerts and task failure text on the console.

Providers put credentials in the user info (``https://user:pw@host``), the query
(``?api-key=…``) and the path (``https://host/<token>/``, ``/v2/<key>``), so only the scheme, the
host and the port are kept; a non-empty path becomes ``/…`` and a query ``?…``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>()\[\]{},]+")


def redact_url(url: str) -> str:
    """An endpoint URL safe to show: ``https://u:p@rpc.example:8443/abc/?api-key=k`` ->
    ``https://rpc.example:8443/…?…``; ``http://127.0.0.1:8899/`` stays as it is. A URL that does
    not parse is shown as ``…``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "…"
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port:
        host = f"{host}:{port}"
    path = parts.path if parts.path in ("", "/") else "/…"
    return urlunsplit((parts.scheme, host, path, "…" if parts.query else "", ""))


def redact_urls_in(text: str) -> str:
    """``text`` with every URL in it replaced by :func:`redact_url` (error messages and task
    results can quote the endpoint they failed on)."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text)
