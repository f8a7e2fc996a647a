"""The benchmark's SMTP server: aiosmtpd answering 250 to every mail and keeping nothing but a
count (printed when it stops). It shares the two cores with the server it measures."""

from __future__ import annotations

import argparse
import signal
import threading
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
    port = parser.parse_args().port
    sink = Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    print(f"listening on 127.0.0.1:{port}", flush=True)
    stopped.wait()
    controller.stop()
    print(f"received {sink.count}", flush=True)


if __name__ == "__main__":
    main()
