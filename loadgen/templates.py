"""Turns a request-mix entry into a concrete request: unique nationalId, weighted queue, known ticket numbers.

Every create_ticket carries a nationalId never used before by this run (and, through the run tag, not by
recent runs either), so a 409 always means the service saw a real duplicate and never one the generator
made by accident.
"""

from __future__ import annotations

import itertools
import json
import random
import time
from bisect import bisect
from collections import deque
from collections.abc import Sequence
from typing import Any

from loadgen.model import RequestSpec, TicketTemplate, UserClass


class WeightedChoice:
    """Constant-time-ish weighted pick over a small, fixed list (cumulative weights + bisect)."""

    def __init__(self, items: Sequence[Any], weights: Sequence[float], rng: random.Random) -> None:
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]
        self.rng = rng
        self.single = self.items[0] if len(self.items) == 1 else None

    def pick(self) -> Any:
        if self.single is not None:
            return self.single
        return self.items[bisect(self.cumulative, self.rng.random() * self.total)]


class RequestFactory:
    """Builds requests for one process; ``process_index`` keeps nationalIds unique across processes."""

    def __init__(
        self,
        target: str,
        ticket: TicketTemplate,
        process_index: int = 0,
        rng: random.Random | None = None,
        run_tag: int | None = None,
    ) -> None:
        self.target = target
        self.ticket = ticket
        self.rng = rng or random.Random()
        self.queue_choice = WeightedChoice(
            [queue for queue, weight in ticket.queues if weight > 0],
            [weight for _, weight in ticket.queues if weight > 0],
            self.rng,
        )
        self._prefix = ticket.national_id_prefix
        if ticket.national_id_start is not None:
            self._next_id = ticket.national_id_start + process_index * 10_000_000
            self._id_format = None
        else:
            # 12 digits, the most the service accepts: 4 from the clock (a new value every second, repeating
            # after ~2.8 h) or the reserved prefix in their place, 2 for the process, 6 for a counter.
            tag = run_tag if run_tag is not None else int(time.time()) % 10_000
            lead = (self._prefix + f"{tag:04d}")[:4]
            self._prefix = ""
            self._next_id = 0
            self._id_format = f"{lead}{process_index % 100:02d}"
        self.known_numeros: deque[str] = deque(maxlen=2048)
        # a fixed body is encoded once per entry of the mix (keyed by identity: the spec holds a dict)
        self._encoded: dict[int, tuple[RequestSpec, bytes]] = {}

    def national_id(self) -> str:
        value = self._next_id
        self._next_id += 1
        if self._id_format is None:
            return f"{self._prefix}{value}"
        return f"{self._prefix}{self._id_format}{value % 1_000_000:06d}"

    def ticket_body(self, national_id: str | None = None, queue: str | None = None) -> dict[str, str]:
        return {
            "nationalId": national_id or self.national_id(),
            "telefono": self.ticket.telefono,
            "branchOffice": self.ticket.branch_office,
            "queueType": queue or self.queue_choice.pick(),
        }

    def build(self, spec: RequestSpec) -> tuple[str, str, bytes | None]:
        """(method, path, JSON body or None) for one request of ``spec``."""
        if spec.endpoint == "create_ticket" and spec.body is None:
            return spec.method, spec.path, json.dumps(self.ticket_body()).encode()
        if spec.endpoint == "get_ticket" and "{numero}" in spec.path:
            if self.known_numeros:
                numero = self.known_numeros[int(self.rng.random() * len(self.known_numeros))]
            else:
                numero = "C000"
            return spec.method, spec.path.replace("{numero}", numero), None
        if spec.body is not None:
            cached = self._encoded.get(id(spec))
            if cached is None or cached[0] is not spec:
                if len(self._encoded) >= 1024:  # specs made per round (contention) must not pile up
                    self._encoded.clear()
                cached = self._encoded[id(spec)] = (spec, json.dumps(spec.body).encode())
            return spec.method, spec.path, cached[1]
        return spec.method, spec.path, None

    def remember(self, spec: RequestSpec, status: int, payload: bytes) -> None:
        """Keep ticket numbers from successful creates so get_ticket reads tickets that exist."""
        if spec.endpoint != "create_ticket" or status != 201 or not payload:
            return
        try:
            numero = json.loads(payload).get("numero")
        except (ValueError, AttributeError):
            return
        if numero:
            self.known_numeros.append(str(numero))


class ClassPicker:
    """Weighted user classes, each with its weighted request mix."""

    def __init__(self, classes: Sequence[UserClass], rng: random.Random) -> None:
        self.classes = list(classes)
        self.class_choice = WeightedChoice(self.classes, [c.weight for c in self.classes], rng)
        self.request_choice = {
            c.name: WeightedChoice(c.requests, [r.weight for r in c.requests], rng) for c in self.classes
        }

    def pick_class(self) -> UserClass:
        return self.class_choice.pick()

    def pick_request(self, user_class: UserClass) -> RequestSpec:
        return self.request_choice[user_class.name].pick()

    def assign(self, vus: int) -> list[UserClass]:
        """Deterministic split of ``vus`` virtual users by class weight (largest remainder)."""
        total = sum(c.weight for c in self.classes)
        shares = [vus * c.weight / total for c in self.classes]
        counts = [int(share) for share in shares]
        order = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
        for i in order[: vus - sum(counts)]:
            counts[i] += 1
        return [c for c, count in zip(self.classes, counts, strict=True) for _ in range(count)]
