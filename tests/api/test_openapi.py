"""The OpenAPI document is served (unsigned) and describes every route; the schema literals
match the model choices."""

from __future__ import annotations

import pytest

from profitshare.api import field_name
from profitshare.api.schemas import (
    CloseStatusName,
    IouStatusName,
    KindName,
    LegRoleName,
    PolicyName,
)
from profitshare.models import CloseKind, DistributionStatus, IouStatus, LegRole, Policy


@pytest.mark.django_db
def test_openapi_json_is_served(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert set(doc["paths"]) == {
        "/api/v1/bots",
        "/api/v1/subscriptions",
        "/api/v1/subscriptions/{subscription_id}/guard",
        "/api/v1/subscriptions/{subscription_id}/end",
        "/api/v1/trade-closes",
        "/api/v1/trade-closes/{close_id}",
        "/api/v1/ious",
        "/api/v1/ious/{iou_id}/retry",
        "/api/v1/ious/{iou_id}/void",
        "/api/v1/referrals",
        "/api/v1/referrals/{wallet}",
    }
    assert set(doc["paths"]["/api/v1/trade-closes"]["post"]["responses"]) >= {"200", "202", "401", "404", "409", "422"}
    assert set(doc["paths"]["/api/v1/subscriptions/{subscription_id}/guard"]) == {"get", "post"}
    end = doc["paths"]["/api/v1/subscriptions/{subscription_id}/end"]
    assert set(end) == {"post"} and set(end["post"]["responses"]) >= {"200", "401", "404", "422"}
    ended = doc["components"]["schemas"]["SubscriptionEndOut"]
    assert ended["properties"]["status"]["const"] == "ended"
    assert set(ended["required"]) == {"subscription_id", "status", "ended_at", "flush_distribution_id"}
    assert ended["properties"]["flush_distribution_id"]["anyOf"] == [{"type": "integer"}, {"type": "null"}]
    schemes = doc["components"]["securitySchemes"]
    assert {s["name"] for s in schemes.values()} == {"X-QV-Signature"}
    close_in = doc["components"]["schemas"]["CloseIn"]
    assert close_in["properties"]["realized_pnl"]["type"] == "integer"
    status = doc["components"]["schemas"]["CloseStatusOut"]
    assert "legs" in status["required"]
    leg = doc["components"]["schemas"]["CloseLegOut"]
    assert set(leg["required"]) == {"role", "wallet", "amount", "paid", "owed", "carried", "signature"}
    assert leg["properties"]["role"]["enum"] == LegRole.values
    assert leg["properties"]["signature"]["anyOf"] == [{"type": "string"}, {"type": "null"}]


def test_schema_literals_match_the_models():
    assert set(PolicyName.__args__) == set(Policy.values)
    assert set(KindName.__args__) == set(CloseKind.values)
    assert set(IouStatusName.__args__) == set(IouStatus.values)
    assert set(CloseStatusName.__args__) == set(DistributionStatus.values) | {"nothing_owed"}
    assert list(LegRoleName.__args__) == LegRole.values  # in the order legs are listed


def test_field_names_of_validation_errors():
    assert field_name(("body", "payload", "profit_share_bps")) == "profit_share_bps"
    assert field_name(("body", "payload")) == "body"
    assert field_name(("body", "payload", "items", 0, "x")) == "items.0.x"
    assert field_name(("query", "limit")) == "limit"
    assert field_name(("path", "iou_id")) == "iou_id"
