"""Debian's haproxy in front of `supportdesk serve` instances, for tests (and benchmarks) of a
load-balanced deployment: round robin over the instances, keep-alive on both sides.

The keep-alive timeouts are ordered so that an idle connection is closed by the side that
would send on it next, not under a request it is sending: clients should expire their idle
connections before haproxy's `timeout http-keep-alive` (10 s; httpx with
`keepalive_expiry=1.0`, as `tests.reliability.storm` does), and the server keeps its idle
connections 65 s (`supportdesk.cli.main.KEEP_ALIVE_S`), longer than haproxy keeps its own
idle server connections in use (it purges them from its pool every few seconds).

A stream (`/events/stream`) is a plain HTTP response to haproxy, so `timeout server` and
`timeout client` (30 s) apply to it, not `timeout tunnel`: it stays open as long as the
server's heartbeat (`SUPPORTDESK_STREAM_HEARTBEAT`, 15 s by default) is shorter than that.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.e2e.conftest import wait_until_healthy
from tests.ports import free_port

HAPROXY = Path("/usr/sbin/haproxy")
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0


def haproxy_config(port: int, backends: list[int]) -> str:
    """haproxy's configuration: HTTP mode on 127.0.0.1:`port`, round robin over the servers
    on 127.0.0.1:`backends`, each health-checked with `GET /health` every second (3 failures
    in a row take it out, 2 successes bring it back). No `option http-server-close`: server
    connections are kept alive and reused. No stats page and no logging: in the foreground,
    haproxy writes its warnings (a server DOWN or UP) to its output, `haproxy_log`."""
    servers = "\n".join(
        f"    server s{n} 127.0.0.1:{backend} check inter 1s" for n, backend in enumerate(backends)
    )
    return f"""\
global
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 10s
    # a health check's answer may take this long (else `inter`, 1 s: too short on a loaded
    # machine, where a slow /health would take a server out)
    timeout check 5s

frontend supportdesk
    bind 127.0.0.1:{port}
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
{servers}
"""


def haproxy_log(workdir: Path, port: int) -> Path:
    """Where `running_haproxy(workdir, ...)` writes the output of the haproxy on `port`."""
    return workdir / f"haproxy-{port}.log"


@contextmanager
def running_haproxy(workdir: Path, backends: list[int]) -> Iterator[int]:
    """haproxy in the foreground (`-db`) on a free port of 127.0.0.1 in front of `backends`,
    until the block ends; yields its port once `GET /health` through it answers 200. The
    process is always stopped (SIGTERM, then SIGKILL). Skips the test, with the reason, where
    Debian's haproxy is not installed; fails instead with SUPPORTDESK_REQUIRE_HAPROXY=1
    (`.ci/run` installs it and sets that)."""
    if not HAPROXY.is_file():
        reason = f"haproxy is not installed: no {HAPROXY} (apt-get install haproxy)"
        if os.environ.get("SUPPORTDESK_REQUIRE_HAPROXY") == "1":
            pytest.fail(f"{reason} (SUPPORTDESK_REQUIRE_HAPROXY=1)")
        pytest.skip(reason)
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / f"haproxy-{port}.cfg"
    config.write_text(haproxy_config(port, backends))
    output = haproxy_log(workdir, port)
    with output.open("w") as log:
        process = subprocess.Popen(
            [str(HAPROXY), "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT
        )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, READY_TIMEOUT_S, output)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
