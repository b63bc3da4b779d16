"""``{% load redaction %}``: ``{{ text|redact_urls }}`` shows error text with every URL in it
redacted (``profitshare.redaction``: no credentials, path or query of an endpoint)."""

from __future__ import annotations

from django import template

from profitshare.redaction import redact_urls_in

register = template.Library()


@register.filter(name="redact_urls")
def redact_urls(text) -> str:
    """``text`` (any value; ``None`` and ``""`` stay empty) with its URLs redacted."""
    if text is None or text == "":
        return ""
    return redact_urls_in(str(text))
