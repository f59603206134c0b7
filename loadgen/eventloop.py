"""Run the generator's coroutines on uvloop when it is installed, else on asyncio's default loop.

uvloop (libuv) roughly halves the time the event loop itself takes per request; the generator works the
same without it, only slower, so a platform without a uvloop wheel gets a warning and the default loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop constructor, or None (asyncio's default) with a warning saying why."""
    try:
        import uvloop
    except ImportError as error:
        log.warning("uvloop is not available (%s): running on the default asyncio event loop", error)
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Like ``asyncio.run``, on uvloop when available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
