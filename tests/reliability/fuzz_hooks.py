"""Schemathesis hooks of the OpenAPI fuzz (`SCHEMATHESIS_HOOKS`): every webhook URL it sends
points at this machine, so that neither the URL check (DNS) nor a delivery ever reaches for a
host elsewhere. The rest of each body stays as generated."""

from __future__ import annotations

from typing import Any

import schemathesis

LOCAL_RECEIVER = "http://127.0.0.1:9/hook"  # the discard port: nothing listens there


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and "url" in body:
        body["url"] = LOCAL_RECEIVER
    return body
