import pytest

from tests.e2e.conftest import empty_database_url

__all__ = ["empty_database_url"]


@pytest.fixture(autouse=True)
def unlimited(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """The storms and the outage measure other things than the rate limiter: the servers they
    start let every request through (the rate-limit tests set their own limits)."""
    if "rate_limit" not in request.node.nodeid:
        monkeypatch.setenv("SUPPORTDESK_RATE_LIMIT_PER_MINUTE", "0")
