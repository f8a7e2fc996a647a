"""The IMAP server of the mail tests: one dovecot for the session (tests/mail/dovecot.py).

The tests are skipped when dovecot-imapd is not installed, unless
SUPPORTDESK_REQUIRE_DOVECOT=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.mail.dovecot import DOVECOT, Dovecot, running

REQUIRE_DOVECOT = os.environ.get("SUPPORTDESK_REQUIRE_DOVECOT") == "1"
MISSING = "dovecot-imapd is not installed (apt-get install dovecot-imapd)"


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if not DOVECOT.exists():
        if REQUIRE_DOVECOT:
            pytest.fail(f"{MISSING} (SUPPORTDESK_REQUIRE_DOVECOT=1)")
        pytest.skip(MISSING)
    try:
        with running() as server:
            yield server
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def mailbox(dovecot: Dovecot) -> Dovecot:
    """The session's dovecot with an empty INBOX."""
    dovecot.clear()
    return dovecot
