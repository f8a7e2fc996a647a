"""The benchmark's SMTP server: aiosmtpd answering 250 to every mail and keeping nothing but a
count. Twice a second it writes `<mails> <its CPU seconds>` to `--status`, so the benchmark
can tell its share of the two cores, which it shares with the server it measures."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 2.0.0 Ok"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status", type=Path, required=True)
    args = parser.parse_args()
    port = args.port
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"listening on 127.0.0.1:{port}", flush=True)
    while not stopped.wait(0.5):
        args.status.write_text(f"{sink.count} {time.process_time()}")
    controller.stop()
    print(f"received {sink.count}", flush=True)


if __name__ == "__main__":
    main()
