"""The API tests' fixtures (signed client, bots and subscriptions built through the API)."""

from tests.api.conftest import _api_secrets, api, bot, chain, subscription  # noqa: F401
