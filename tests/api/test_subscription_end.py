"""``POST /subscriptions/{id}/end``: 200 with the end and its flush distribution (queued after
commit), the same answer again with nothing new, 404 unknown, 422 for a query parameter it does
not define; a close of an ended subscription is 409 and writes nothing, a replay of an earlier
close still answers 200 (docs/design.md, "A subscription ends")."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django_q.models import OrmQ

from profitshare.models import AuditEvent, Distribution, LegCarry, LegRole, Subscription, TradeClose
from tests.api.conftest import close_body, db_state, new_address

pytestmark = pytest.mark.django_db

END = "/api/v1/subscriptions/sub-1/end"


def test_ending_a_subscription_that_carries_nothing_answers_200_without_a_flush(api, subscription):
    response = api.post(END)
    assert response.status_code == 200, response.content
    body = response.json()
    sub = Subscription.objects.get(subscription_id="sub-1")
    assert sub.status == "ended"
    assert abs(sub.ended_at - datetime.fromisoformat(body["ended_at"])) < timedelta(milliseconds=1)  # JSON: ms
    assert body == {"subscription_id": "sub-1", "status": "ended", "ended_at": body["ended_at"],
                    "flush_distribution_id": None}
    assert not Distribution.objects.exists() and not OrmQ.objects.exists()
    event = AuditEvent.objects.get(entity="subscription", entity_id="sub-1", to_status="ended")
    assert (event.actor, event.from_status) == ("api:platform", "active")


def test_ending_one_that_carries_dust_queues_its_flush_and_ending_again_is_the_same_answer(
    api, subscription, django_capture_on_commit_callbacks
):
    # what the engine leaves after carrying a share's legs as dust
    sub = Subscription.objects.get(subscription_id="sub-1")
    Subscription.objects.filter(pk=sub.pk).update(dust_carry=7_000)
    LegCarry.objects.create(subscription=sub, wallet=new_address(), role=LegRole.REFERRAL_1, amount=300)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(END)
    assert response.status_code == 200, response.content
    flush = Distribution.objects.get()
    assert response.json()["flush_distribution_id"] == flush.pk
    assert (flush.close, flush.share, flush.owed, flush.status) == (None, 0, 0, "pending")
    tasks = [q.task for q in OrmQ.objects.all()]
    assert [(t["func"], t["args"]) for t in tasks] == [("profitshare.tasks.process_distribution_task", (flush.pk,))]
    before = db_state()
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post(END)
    assert again.status_code == 200 and again.json() == response.json()
    assert db_state() == before  # no second flush, no second task, no event


def test_an_unknown_subscription_is_404_and_writes_nothing(api, subscription):
    before = db_state()
    response = api.post("/api/v1/subscriptions/no-such-sub/end")
    assert response.status_code == 404
    assert response.json() == {"detail": "subscription 'no-such-sub' not found"}
    assert db_state() == before


def test_an_unknown_query_parameter_is_422_and_writes_nothing(api, subscription):
    before = db_state()
    response = api.post(END + "?now=1")
    assert response.status_code == 422
    assert response.json() == {"detail": [{"field": "now", "message": "unknown query parameter"}]}
    assert db_state() == before
    assert Subscription.objects.get(subscription_id="sub-1").status == "active"


def test_an_unsigned_end_is_refused(api, subscription):
    before = db_state()
    assert api.post(END, secret=None).status_code == 401
    assert db_state() == before


def test_a_close_after_the_end_is_409_and_a_replay_of_an_earlier_close_is_200(api, subscription):
    assert api.post("/api/v1/trade-closes", close_body("close-1")).status_code == 202
    assert api.post(END).status_code == 200
    before = db_state()
    late = api.post("/api/v1/trade-closes", close_body("close-2"))
    assert late.status_code == 409
    assert late.json() == {"detail": "subscription 'sub-1' has ended: it takes no new closes"}
    assert db_state() == before and not TradeClose.objects.filter(close_id="close-2").exists()
    replay = api.post("/api/v1/trade-closes", close_body("close-1"))
    assert replay.status_code == 200 and replay.json() == {"close_id": "close-1", "status": "pending"}
    assert db_state() == before
