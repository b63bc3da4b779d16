"""URLs of the HTMX pages (namespace ``pages``): sign-in, creator dashboard, every earner's legs
(``/earnings/``), subscriber trade history, admin console and the public marketplace snippet. The API lives under ``/api/v1/``."""

from django.urls import path

from profitshare.views import (
    auth,
    console,
    console_webhooks,
    creator,
    creator_notices,
    demo,
    leg_earnings,
    marketplace,
    subscriber,
)

app_name = "pages"

urlpatterns = [
    path("", auth.home, name="home"),
    path("signin/", auth.signin, name="signin"),
    path("signin/challenge/", auth.challenge, name="signin-challenge"),
    path("signin/verify/", auth.verify, name="signin-verify"),
    path("signin/dev/", auth.dev_signin, name="signin-dev"),
    path("signout/", auth.signout, name="signout"),
    path("creator/", creator.dashboard_page, name="creator"),
    path("creator/history.csv", creator.history_csv, name="creator-csv"),
    path("creator/bots/<str:bot_id>/", creator.bot_page, name="creator-bot"),
    path("creator/telegram/code/", creator_notices.link_code, name="creator-telegram-code"),
    path("creator/telegram/notices/", creator_notices.save_notices, name="creator-telegram-notices"),
    path("creator/telegram/unlink/", creator_notices.unlink, name="creator-telegram-unlink"),
    path("earnings/", leg_earnings.earnings_page, name="earnings"),
    path("earnings/history.csv", leg_earnings.history_csv, name="earnings-csv"),
    path("subscriber/", subscriber.subscriptions_page, name="subscriber"),
    path("subscriber/<str:subscription_id>/", subscriber.trades_page, name="subscriber-trades"),
    path("subscriber/<str:subscription_id>/banner/", subscriber.banner, name="subscriber-banner"),
    path("subscriber/<str:subscription_id>/retry/", subscriber.retry_debts, name="subscriber-retry"),
    path("console/", console.debts, name="console"),
    path("console/ious/retry/", console.bulk_retry, name="console-bulk-retry"),
    path("console/ious/<int:iou_id>/", console.iou_page, name="console-iou"),
    path("console/ious/<int:iou_id>/row/", console.iou_row, name="console-iou-row"),
    path("console/ious/<int:iou_id>/retry/", console.retry_now, name="console-iou-retry"),
    path("console/ious/<int:iou_id>/void/", console.void, name="console-iou-void"),
    path("console/distributions/<int:distribution_id>/", console.distribution_page, name="console-distribution"),
    path("console/treasury/", console.treasury, name="console-treasury"),
    path("console/alerts/", console.alerts, name="console-alerts"),
    path("console/alerts/<int:alert_id>/ack/", console.acknowledge, name="console-alert-ack"),
    path("console/delinquent/", console.delinquent, name="console-delinquent"),
    path("console/health/", console.health, name="console-health"),
    path("console/webhooks/", console_webhooks.deliveries, name="console-webhooks"),
    path("console/webhooks/redeliver/", console_webhooks.redeliver_filtered, name="console-webhooks-redeliver"),
    path("console/webhooks/<int:delivery_id>/redeliver/", console_webhooks.redeliver_one,
         name="console-webhook-redeliver"),
    path("bots/<str:bot_id>/snippet/", marketplace.bot_snippet, name="bot-snippet"),
    path("demo/", demo.demo_page, name="demo"),
]
