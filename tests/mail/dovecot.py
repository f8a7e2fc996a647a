"""A dovecot of its own, for the IMAP tests and the mail benchmark: a real server, so the client is
tested against the IMAP a deployment meets (literals, flags, UIDs, TLS), not against a fake
that agrees with its author.

It runs in the foreground as a child of pytest, from a config in a temporary directory, on
free ports of 127.0.0.1, and never touches a system dovecot (/etc/dovecot is not read, and
base_dir is its own). As root, dovecot's master and its internal services run as root,
but it refuses two things: imap-login as root (it runs as dovenull, which Debian's package
creates for just that) and mail access as root (the imap process runs as nobody, in a
Maildir that nobody owns). As any other user, everything runs as that user.

`running()` starts one for the length of a block (tests/mail/conftest.py: one per session).
"""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import trustme

DOVECOT = Path("/usr/sbin/dovecot")
START_TIMEOUT_S = 10.0
USER = "support"
# Characters that must be percent-encoded in a URL and escaped in an IMAP quoted string
# (but no `:`, which would end the password in dovecot's passwd-file).
PASSWORD = 'h@rd/"pa\\ss%w0rd'
_FLAGS = re.compile(rb"UID (\d+) FLAGS \(([^)]*)\)")


@dataclass
class Dovecot:
    """The running server, and a real client (the stdlib's imaplib) to set up and inspect its
    INBOX behind the back of the client under test."""

    port: int
    tls_port: int
    ca_file: Path
    log: Path
    _imap: imaplib.IMAP4 | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"imap://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.port}/INBOX"

    @property
    def tls_url(self) -> str:
        return f"imaps://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{self.tls_port}/INBOX"

    def append(self, raw: bytes) -> None:
        """Deliver one message into INBOX (imaplib turns lone LFs into CRLF: use CRLF)."""
        typ, data = self._client().append("INBOX", None, None, raw)
        assert typ == "OK", data

    def clear(self) -> None:
        """Expunge every message in INBOX."""
        imap = self._selected()
        imap.uid("STORE", "1:*", "+FLAGS.SILENT", "(\\Deleted)")
        imap.expunge()

    def flags(self) -> dict[str, set[str]]:
        """Every message in INBOX: its UID and its flags (\\Recent left out: it depends on
        which session saw the message first)."""
        typ, data = self._selected().uid("FETCH", "1:*", "(UID FLAGS)")
        assert typ == "OK", data
        found = {}
        for item in data:
            match = _FLAGS.search(item if isinstance(item, bytes) else b"")
            if match:
                flags = set(match[2].decode().split()) - {"\\Recent"}
                found[match[1].decode()] = flags
        return found

    def store(self, uid: str, flag: str) -> None:
        """Set a flag on a message, as a person's mail client would."""
        typ, data = self._selected().uid("STORE", uid, "+FLAGS", f"({flag})")
        assert typ == "OK", data

    def create_mailbox(self, wire_name: str) -> None:
        """Create a mailbox; the name as IMAP sends it (modified UTF-7)."""
        imap = self._client()
        typ, data = imap.create(wire_name)
        assert typ == "OK" or b"ALREADYEXISTS" in data[0], data

    def close(self) -> None:
        if self._imap is not None:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self._imap.logout()
            self._imap = None

    def _client(self) -> imaplib.IMAP4:
        if self._imap is None:
            self._imap = imaplib.IMAP4("127.0.0.1", self.port, timeout=30)
            self._imap.login(USER, PASSWORD)
        return self._imap

    def _selected(self) -> imaplib.IMAP4:
        """Selected afresh, so that what other sessions did meanwhile is seen."""
        imap = self._client()
        typ, data = imap.select("INBOX")
        assert typ == "OK", data
        return imap


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _users() -> dict[str, str]:
    """Who runs what (see the module's docstring)."""
    me = pwd.getpwuid(os.geteuid()).pw_name
    my_group = grp.getgrgid(os.getegid()).gr_name
    if os.geteuid() != 0:
        return {"internal": me, "internal_group": my_group, "login": me, "mail": me}
    return {"internal": "root", "internal_group": "root", "login": "dovenull", "mail": "nobody"}


def _config(root: Path, port: int, tls_port: int, users: dict[str, str]) -> str:
    mail = pwd.getpwnam(users["mail"])
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login
# a wrong password is answered at once, not after dovecot's 2 s
auth_failure_delay = 0
default_internal_user = {users["internal"]}
default_internal_group = {users["internal_group"]}
default_login_user = {users["login"]}
mail_uid = {mail.pw_uid}
mail_gid = {mail.pw_gid}
first_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
mail_location = maildir:{root}/mail/Maildir
mail_fsync = never
passdb {{
  driver = passwd-file
  args = {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    port = {port}
  }}
  inet_listener imaps {{
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # no growing delay for the logins after the wrong-password test (dovecot's auth penalty)
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def _answers(port: int, *, greeting: bytes) -> bool:
    """The port takes a connection and says `greeting` first (TLS ports: b"")."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(len(greeting)).startswith(greeting) if greeting else True
    except OSError:
        return False


def _start(root: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    port, tls_port = _free_ports(2)
    users = _users()
    (root / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, tls_port, users))
    mail = root / "mail"
    mail.mkdir()
    shutil.chown(mail, users["mail"], pwd.getpwnam(users["mail"]).pw_gid)
    output = (root / "output.log").open("wb")
    process = subprocess.Popen(
        [str(DOVECOT), "-F", "-c", str(conf)], stdout=output, stderr=subprocess.STDOUT
    )
    output.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (_answers(port, greeting=b"* OK") and _answers(tls_port, greeting=b"")):
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process)
            logs = "\n".join(
                path.read_text(errors="replace")
                for path in (root / "output.log", root / "dovecot.log")
                if path.exists()
            )
            raise RuntimeError(
                f"dovecot did not answer on 127.0.0.1:{port} and :{tls_port}:\n{logs}"
            )
        time.sleep(0.05)
    return process, port, tls_port


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running() -> Iterator[Dovecot]:
    """A dovecot serving user `support` on imap:// and imaps:// (a trustme certificate for
    127.0.0.1 and localhost) until the block ends."""
    # Not under pytest's tmp_path: its parent is private to the user running pytest, and the
    # mail is written as another user when that is root.
    root = Path(tempfile.mkdtemp(prefix="supportdesk-dovecot-"))
    root.chmod(0o711)
    try:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ca.cert_pem.write_to_path(str(root / "ca.pem"))
        cert.private_key_pem.write_to_path(str(root / "key.pem"))
        (root / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        process, port, tls_port = _start(root)
        server = Dovecot(port, tls_port, root / "ca.pem", root / "dovecot.log")
        try:
            yield server
        finally:
            server.close()
            _stop(process)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """`python -m tests.mail.dovecot`: a throwaway IMAP server to try mail by hand (the
    README's e-mail walk-through), until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop dovecot on the way out
    with running() as server:
        print(f"IMAP server for user {USER}: {server.url}", flush=True)
        print(f"deliver a mail into its INBOX: curl -T mail.eml '{server.url}'", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
