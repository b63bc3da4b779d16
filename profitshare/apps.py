from django.apps import AppConfig


class ProfitShareConfig(AppConfig):
    """The profit-share app: engine, chain gateway, local node, pages."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "profitshare"
    verbose_name = "Profit share"
