"""Fault switches: each one breaks exactly one guarantee on purpose, so the NFR checks can prove they notice.

Parsed from ``--faults`` / ``TICKETERO_FAULTS``, a comma list such as ``unlocked-claim,slow-api=3``.
All are off by default; ``ticketero/README.md`` says which requirement each one breaks.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class FaultSpecError(ValueError):
    """The fault list names an unknown switch or gives a bad value."""


DEFAULT_LEAK_BYTES = 256 * 1024
DEFAULT_SLOW_API_SECONDS = 3.0
DEFAULT_NON_ATOMIC_PAUSE_SECONDS = 0.5

KNOWN = {
    "unlocked-claim": "advisor claimed without a row lock → double assignment (RNF-03)",
    "memory-leak": "every API request keeps a buffer forever → RSS grows (RNF-07); value = bytes",
    "slow-api": "POST /api/tickets sleeps before answering → p95 above 2 s (RNF-02); value = seconds",
    "stalled-worker": "the first ticket taken stops heart-beating and never finishes (RNF-05)",
    "failing-relay": "the outbox relay marks messages FAILED instead of publishing (RNF-04); value = share "
    "of messages, 0-1 (default 1: all)",
    "non-atomic-create": "POST /api/tickets commits the ticket, then writes its outbox row in a second "
    "transaction after a pause → a database cut in between leaves a ticket without its outbox row (RNF-04); "
    "value = seconds (default 0.5)",
    "chatty-create": "POST /api/tickets sends its transaction one statement at a time (~8 round trips to the "
    "database instead of 1) → with the database far away the create p95 goes over 2 s (RNF-02)",
    "no-backoff": "the outbox relay retries an unreachable broker every relay_backoff seconds instead of "
    "backing off exponentially (RNF-04)",
    "duplicate-processing": "a redelivered message of a ticket already past WAITING is served again: "
    "a second COMPLETED event and the advisor's served count grows (RNF-04)",
    "no-drain": "SIGTERM exits at once: no readiness drain, in-flight requests and tickets are cut off (RNF-04, "
    "RNF-06)",
    "outage-drops": "while the broker is unreachable the outbox relay gives up on (FAILS) every due message "
    "instead of holding it (RNF-04)",
}


@dataclass(frozen=True)
class Faults:
    unlocked_claim: bool = False
    memory_leak_bytes: int = 0
    slow_api_seconds: float = 0.0
    stalled_worker: bool = False
    failing_relay: bool = False
    failing_relay_fraction: float = 1.0
    non_atomic_create_seconds: float = 0.0  # > 0: the outbox row is written that long after the ticket
    chatty_create: bool = False  # the creation one statement per round trip, as before pipelining
    no_backoff: bool = False
    duplicate_processing: bool = False
    no_drain: bool = False
    outage_drops: bool = False
    # What was asked for, in order, for logs and --help.
    names: tuple[str, ...] = field(default=())

    def relay_fails(self, outbox_id: int) -> bool:
        """Whether the failing-relay fault gives up on this outbox row. Picked by id, spread by a prime so
        consecutive rows alternate, and the same on every pass."""
        share = round(self.failing_relay_fraction * 1000)
        return self.failing_relay and (outbox_id * 7919) % 1000 < share

    @property
    def any(self) -> bool:
        return bool(self.names)

    def describe(self) -> str:
        return ",".join(self.names)

    def __str__(self) -> str:  # how --help shows the default
        return self.describe()


def parse_faults(spec: str | None) -> Faults:
    """Parse ``a,b=val`` into Faults; raises FaultSpecError naming the bad entry."""
    values: dict[str, object] = {}
    names: list[str] = []
    for raw in (spec or "").split(","):
        entry = raw.strip()
        if not entry:
            continue
        name, _, value = entry.partition("=")
        name = name.strip()
        value = value.strip()
        if name not in KNOWN:
            raise FaultSpecError(f"unknown fault {name!r}; known: {', '.join(sorted(KNOWN))}")
        names.append(entry)
        if name == "memory-leak":
            values["memory_leak_bytes"] = _positive(name, value, DEFAULT_LEAK_BYTES, int, "a number of bytes")
        elif name == "slow-api":
            values["slow_api_seconds"] = _positive(name, value, DEFAULT_SLOW_API_SECONDS, float, "seconds")
        elif name == "non-atomic-create":
            values["non_atomic_create_seconds"] = _positive(
                name, value, DEFAULT_NON_ATOMIC_PAUSE_SECONDS, float, "seconds"
            )
        elif name == "failing-relay":
            fraction = _positive(name, value, 1.0, float, "a share between 0 and 1")
            if fraction > 1:
                raise FaultSpecError("failing-relay: expected a share > 0 and <= 1")
            values["failing_relay"] = True
            values["failing_relay_fraction"] = fraction
        else:
            if value:
                raise FaultSpecError(f"{name} takes no value, got {value!r}")
            values[name.replace("-", "_")] = True
    return Faults(names=tuple(names), **values)  # type: ignore[arg-type]


def _positive(name: str, value: str, default: float, parse: type[int] | type[float], what: str) -> float:
    """A fault's value (``slow-api=3``): ``default`` when none is given, else a number > 0."""
    try:
        number = parse(value) if value else default
    except ValueError:
        raise FaultSpecError(f"{name}={value!r}: expected {what}") from None
    if number <= 0:
        raise FaultSpecError(f"{name}: expected {what}, > 0")
    return number
