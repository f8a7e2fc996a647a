"""What the app's start-up does to the process (issue 13)."""

from __future__ import annotations

import gc

from supportdesk.app import create_app, lifespan
from supportdesk.config import Settings


async def test_start_up_puts_what_it_loaded_out_of_the_collectors_sight(
    settings: Settings,
) -> None:
    """A full collection walked every object of the process, 65 to 100 ms with the event loop
    stopped, once a second under a write load: the start-up heap is frozen instead."""
    application = create_app(settings)
    gc.unfreeze()
    async with lifespan(application):
        assert gc.get_freeze_count() > 10_000
