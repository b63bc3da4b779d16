"""Template filters for the legs of a split share (``{% load legs %}``)."""

from __future__ import annotations

from django import template

from profitshare.models import LegRole

register = template.Library()


@register.filter(name="role_label")
def role_label(role: str) -> str:
    """Template filter: a ``LegRole`` value in words (``referral_1`` → "Referral, level 1")."""
    return LegRole(role).label
