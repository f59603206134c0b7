"""``python -m exporters`` / ``ticketero-exporter``: serve Ticketero's metrics on /metrics."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading

from prometheus_client import start_http_server

from exporters.app import build_exporter, startup_checks
from exporters.config import ConfigError, build_parser, describe_settings, load_settings

log = logging.getLogger("exporters")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings, _sources = load_settings(args)
        exporter = build_exporter(settings)
    except ConfigError as exc:
        print(f"ticketero-exporter: bad configuration: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # pika logs every connection step, and every failure at every scrape of an outage; the failures reach the
    # queue collector as exceptions, which the scrape logs once per distinct error.
    logging.getLogger("pika").setLevel(logging.CRITICAL)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    if args.check_config:
        print(json.dumps(describe_settings(settings), indent=2))
        return 0
    log.info("settings: %s", json.dumps(describe_settings(settings)))
    startup_checks(exporter)
    try:
        server, _thread = start_http_server(
            settings.listen_port, addr=settings.listen_address, registry=exporter.registry
        )
    except OSError as exc:
        print(
            f"ticketero-exporter: cannot listen on {settings.listen_address}:{settings.listen_port}: {exc}",
            file=sys.stderr,
        )
        return 1
    log.info("serving http://%s:%d/metrics", settings.listen_address, settings.listen_port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
    exporter.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
