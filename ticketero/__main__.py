"""``python -m ticketero`` / ``ticketero``: run the service until SIGTERM or SIGINT, then drain and exit 0."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from ticketero.app import ListenError, Service
from ticketero.config import Settings, load_settings_or_exit
from ticketero.database import DatabaseUnavailable


def configure_logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # Library chatter (reconnect tracebacks) adds nothing to our own lifecycle lines.
    for noisy in ("aiormq", "aio_pika", "psycopg.pool"):
        logging.getLogger(noisy).setLevel(logging.WARNING if level == "DEBUG" else logging.CRITICAL)


async def run(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = Service(settings)
    try:
        await service.start()
    except (DatabaseUnavailable, ListenError) as exc:
        logging.getLogger("ticketero").error("%s", exc)
        await service.stop()
        return 2
    await stop.wait()
    logging.getLogger("ticketero").info("signal received")
    if settings.faults.no_drain:
        logging.getLogger("ticketero").warning("no-drain fault: exiting at once, nothing drained")
        logging.shutdown()
        os._exit(0)
    await service.drain_readiness()
    await service.stop()
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    settings = load_settings_or_exit(argv)
    configure_logging(settings.log_level)
    raise SystemExit(asyncio.run(run(settings)))


if __name__ == "__main__":
    main()
