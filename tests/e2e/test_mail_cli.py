"""`supportdesk mail ingest` and `supportdesk mail test` as an MTA and an operator run them:
exit codes, one-line errors, passwords never shown."""

from __future__ import annotations

import os
import subprocess
import sys
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

from tests.e2e.conftest import run_cli
from tests.mail.smtp_receiver import Receiver
from tests.ports import free_port


def _mail(sender: str, text: str, **headers: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "support@example.net"
    message["Subject"] = "Printer on fire"
    message["Message-ID"] = make_msgid(domain="client.example.org")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(text)
    return message.as_bytes()


def _env(tmp_path: Path) -> dict[str, str]:
    return {
        "SUPPORTDESK_DATABASE_URL": f"sqlite:///{tmp_path / 'mail.db'}",
        "SUPPORTDESK_STORAGE_DIR": str(tmp_path / "storage"),
        "SUPPORTDESK_MAIL_FROM": "Support <support@example.net>",
    }


def test_ingest_takes_a_file_or_stdin_and_exits_65_when_it_rejects(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run_cli("migrate", env=env)
    path = tmp_path / "new.eml"
    path.write_bytes(_mail("Ann <ann@example.org>", "It smokes."))
    accepted = run_cli("mail", "ingest", str(path), env=env)
    assert accepted.stdout.startswith("accepted: message 1 on ticket #1"), accepted.stdout
    again = run_cli("mail", "ingest", str(path), env=env)
    assert "(received before)" in again.stdout
    piped = subprocess.run(
        [sys.executable, "-m", "supportdesk", "mail", "ingest"],
        input=_mail("bot@example.org", "I am away", Auto_Submitted="auto-replied"),
        capture_output=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    assert piped.returncode == 65, piped.stderr
    assert (
        piped.stderr.decode().strip()
        == "error: rejected: automatic mail (Auto-Submitted: auto-replied)"
    )
    missing = run_cli("mail", "ingest", str(tmp_path / "nope.eml"), env=env, check=False)
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: cannot read")


def test_mail_test_says_what_the_server_answered(tmp_path: Path, smtp: Receiver) -> None:
    env = {**_env(tmp_path), "SUPPORTDESK_SMTP_URL": smtp.url}
    result = run_cli("mail", "test", "--to", "ops@example.org", env=env)
    assert result.stdout.startswith("sent to ops@example.org through smtp://127.0.0.1:")
    assert "the server answered 250 2.0.0 Ok: queued" in result.stdout
    (received,) = smtp.wait_for(1)
    assert received.recipients == ["ops@example.org"]
    assert received.message["Subject"] == "supportdesk test mail"


def test_mail_test_errors_are_one_line_without_the_password(tmp_path: Path) -> None:
    guarded = Receiver(user="desk", password="s3cret-pass")
    guarded.start()
    try:
        cases = {
            f"smtp://desk:wrong-pass@127.0.0.1:{guarded.port}?plain_auth=1": (
                f"error: SMTP login failed for desk at 127.0.0.1:{guarded.port} "
                "(wrong user or password)"
            ),
            f"smtp://desk:wrong-pass@127.0.0.1:{guarded.port}": "offers no STARTTLS",
            f"smtp://desk:wrong-pass@127.0.0.1:{free_port()}": "connection refused",
            "http://desk:wrong-pass@127.0.0.1": "must start with smtp:// or smtps://",
            "smtp://desk:wrong-pass@127.0.0.1:99999": "port that is not a number",
        }
        for url, expected in cases.items():
            result = run_cli(
                "mail", "test", "--to", "ops@example.org", "--smtp-url", url,
                env=_env(tmp_path), check=False,
            )  # fmt: skip
            assert result.returncode != 0
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and expected in lines[0], result.stderr
            assert "wrong-pass" not in result.stderr + result.stdout
        bad_to = run_cli(
            "mail", "test", "--to", "ops@example.org\r\nBcc: x@example.org",
            "--smtp-url", guarded.url, env=_env(tmp_path), check=False,
        )  # fmt: skip
        assert bad_to.returncode == 2 and "is not an e-mail address" in bad_to.stderr
        unset = run_cli("mail", "test", "--to", "ops@example.org", env=_env(tmp_path), check=False)
        assert "no SMTP server: set SUPPORTDESK_SMTP_URL" in unset.stderr
    finally:
        guarded.stop()


def test_ingest_counts_a_huge_mail_without_holding_it(tmp_path: Path) -> None:
    """A mail far over the size limit on stdin: read to the end (the MTA's pipe is drained),
    rejected by its size, recorded under its sender."""
    env = {
        **_env(tmp_path),
        "SUPPORTDESK_MAX_ATTACHMENTS": "1",
        "SUPPORTDESK_MAX_ATTACHMENT_BYTES": "1000",
        "SUPPORTDESK_MAX_BODY_BYTES": "1024",
    }  # the limit of a whole mail: twice 2,024 bytes
    run_cli("migrate", env=env)
    huge = _mail("Ann <ann@example.org>", "x" * 5_000_000)
    piped = subprocess.run(
        [sys.executable, "-m", "supportdesk", "mail", "ingest"],
        input=huge,
        capture_output=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    assert piped.returncode == 65, piped.stderr
    assert piped.stderr.decode().strip() == (
        f"error: rejected: message too large ({len(huge)} bytes, more than 4048)"
    )


def test_ingest_exits_75_when_the_mail_cannot_be_taken_for_now(tmp_path: Path) -> None:
    """EX_TEMPFAIL: the MTA keeps the mail and tries again (65 would bounce it)."""
    path = tmp_path / "new.eml"
    path.write_bytes(_mail("Ann <ann@example.org>", "It smokes."))
    down = {
        **_env(tmp_path),
        "SUPPORTDESK_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x",
    }
    failed = run_cli("mail", "ingest", str(path), env=down, check=False)
    assert failed.returncode == 75, failed.stderr
    assert failed.stderr.startswith("error: ") and failed.stderr.count("\n") == 1
    wrong = {**_env(tmp_path), "SUPPORTDESK_MAIL_FROM": "not an address"}
    misconfigured = run_cli("mail", "ingest", str(path), env=wrong, check=False)
    assert misconfigured.returncode == 75, misconfigured.stderr
    assert misconfigured.stderr.startswith("error: invalid configuration: mail_from")
