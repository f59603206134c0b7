"""What the PostgreSQL collectors remember between scrapes, so a scrape costs the active rows, not the history.

The Java original's database may have nothing but primary keys, and adding an index there needs a DBA. Every
query of a scrape therefore goes through a primary key:

* **Feeds.** New rows are read as ``id > watermark``. An id below the watermark that was not there yet (a
  transaction that took its id first and committed later, or rolled back) is a *gap*, re-read by id at every
  scrape until it shows up or ``gap_wait`` seconds have passed.
* **Tracked rows.** Active tickets (WAITING, CALLED, IN_PROGRESS) and unsent outbox rows (PENDING, FAILED) are
  kept in memory and re-read by id at every scrape; PostgreSQL returns only those whose ``xmin`` changed or that
  are gone, so the transfer follows the changes. A ticket that left the active states is dropped: a COMPLETED,
  CANCELLED or NO_SHOW ticket never becomes active again; a SENT outbox row never changes again.
* **The sweep.** What only the whole history can tell — the active tickets at start-up, a COMPLETED ticket
  without ``completed_at``, a ticket without an outbox row, the served-counter drift — is read by a walk over the
  primary keys in slices: first ``outbox_message`` (which ticket ids have an outbox row, kept as a bitmap of one
  bit per ticket id: 1.25 MB per 10 M tickets), then ``ticket``. Each scrape gives the walk ``sweep_budget``
  seconds (``first_sweep_budget`` until the first sweep is complete). A violation planted on an old row is seen
  by the next sweep to reach that row (within two sweep lengths); ``ticketero_consistency_sweep_age_seconds``
  says how old the last complete sweep is.

All of one scrape's reads run in one REPEATABLE READ transaction, so they see one snapshot: a ticket and the
advisor it holds, a ticket and its outbox row, are compared at the same instant, and a ticket whose status
changed between two scrapes is seen once in its old state and once in its new one, never lost, never twice.
Each table is read in a savepoint of its own, with what is left of the scrape as its time limit: a locked or
slow table costs the collectors that need it, not the others.

The served-drift count (COMPLETED tickets with an advisor) is exact without re-reading the history: the
sweep counts the slices it walks; a completion seen by the feeds is added to the published count, and to the
sweep in progress only when its id is behind the walk's cursor or above the walk's top (otherwise the walk
will count it when it gets there). Rows changed behind the walk's back (an old row updated or deleted) are
corrected by the next complete sweep.

Where the recommended indexes exist (``exporters/sql/indexes.sql``) they are used: the active tickets and unsent
outbox rows are known at the first scrape instead of after the first sweep, and the rule
``completed_without_completed_at`` is checked over the whole history at every scrape.

The collectors share one ``PostgresState``; ``refresh(deadline)`` does the reading once per scrape (the scrape
passes the same deadline to every collector) and each collector publishes its part.
"""

from __future__ import annotations

import collections
import heapq
import logging
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from exporters.base import ConcernCollector
from exporters.ledger import HistogramState, LabelledCounters, LabelledHistograms
from exporters.postgres import PostgresClient, one

log = logging.getLogger(__name__)

QUEUE_TYPES = ("CAJA", "PERSONAL", "EMPRESAS", "GERENCIA")
ACTIVE_STATUSES = ("WAITING", "CALLED", "IN_PROGRESS")
HOLDING_STATUSES = ("CALLED", "IN_PROGRESS")
SWEEP_CHECKS = ("completed_without_completed_at", "without_outbox", "served_drift")

# Seconds. Wait: the plan's SLO speaks of minutes in queue; service: a few minutes per attention.
WAIT_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)
SERVICE_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# The plan's recovery test expects detection within 90 s of the last heartbeat (check every 30 s, timeout 60 s).
DETECTION_BUCKETS = (5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 75.0, 90.0, 120.0, 180.0, 300.0)
RECOVERY_TYPES = ("DEAD_WORKER",)

# Ids below the newest at start-up that the feeds still read as new: rows committing late at start-up are not
# missed, and the recent completions (partners of the double-assignment check) are known from the first scrape.
FEED_START_BACKLOG = 1000
# At most this many gap ids are remembered (the newest), and at most this many violating ids per check.
MAX_GAPS = 100_000
MAX_VIOLATORS = 100_000
# Completed tickets remembered per advisor, as partners of the double-assignment check.
RECENT_PER_ADVISOR = 64

NOW_SQL = "SELECT EXTRACT(EPOCH FROM now())::float8"
LIMIT_SQL = "SELECT set_config('statement_timeout', %s, true)"
BOUNDS_SQL = "SELECT min(id), max(id) FROM {table}"
PARTS = ("tickets", "outbox", "advisors")
INDEXES_SQL = "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s"

# ticket.created_at, outbox_message.{aggregate_id, attempts, created_at, sent_at} and
# recovery_event.last_heartbeat_at are not named by the test plan's SQL: detected at start, NULL when absent.
TICKET_COLUMNS = (
    "{t}id, {t}xmin::text::bigint, {t}status, {t}queue_type, {t}national_id, {t}assigned_advisor_id,"
    " EXTRACT(EPOCH FROM {created_at})::float8, EXTRACT(EPOCH FROM {t}started_at)::float8,"
    " EXTRACT(EPOCH FROM {t}completed_at)::float8"
)
OUTBOX_COLUMNS = (
    "{t}id, {t}xmin::text::bigint, {t}status, {aggregate_id}, {attempts},"
    " EXTRACT(EPOCH FROM {created_at})::float8, EXTRACT(EPOCH FROM {sent_at})::float8"
)
NEW_SQL = "SELECT {columns} FROM {table} WHERE id > %s"
# Known ids (tracked rows, gaps, violators) with the xmin last seen (-1 for never seen): PostgreSQL returns
# those that changed (xmin differs) or are gone (the LEFT JOIN finds nothing), so unchanged rows cost no transfer.
# The ids are given twice: ``id = ANY`` makes the planner read them through the primary key (joined to unnest()
# alone, 10,000 ids are enough for it to prefer scanning the whole table).
CHANGED_SQL = """
SELECT k.id, {columns}
FROM unnest(%(ids)s::bigint[], %(seen)s::bigint[]) AS k(id, seen)
LEFT JOIN (SELECT *, xmin FROM {table} WHERE id = ANY(%(ids)s::bigint[])) t ON t.id = k.id
WHERE t.id IS NULL OR t.xmin::text::bigint <> k.seen
"""
ADVISORS_SQL = """
SELECT id, status, total_tickets_served, EXTRACT(EPOCH FROM now() - last_heartbeat)::float8 FROM advisor
"""
RECOVERY_COLUMNS = "id, EXTRACT(EPOCH FROM detected_at)::float8, recovery_type, {detection}"
RECOVERY_NEW_SQL = "SELECT {columns} FROM recovery_event WHERE id > %s OR id = ANY(%s)"
DETECTION_WITH_HEARTBEAT = "EXTRACT(EPOCH FROM detected_at - last_heartbeat_at)::float8"

# With the recommended partial indexes (the WHERE clauses repeat their predicates).
ACTIVE_BY_INDEX_SQL = "SELECT {columns} FROM ticket WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS')"
UNSENT_BY_INDEX_SQL = """
SELECT {columns} FROM outbox_message WHERE status = 'PENDING'
UNION ALL SELECT {columns} FROM outbox_message WHERE status = 'FAILED'
"""
COMPLETED_WITHOUT_COMPLETED_AT_SQL = (
    "SELECT id, xmin::text::bigint FROM ticket WHERE status = 'COMPLETED' AND completed_at IS NULL LIMIT %s"
)

# The sweep: one pass over each slice of primary keys. Outbox slice: which ticket ids have an outbox row, as runs
# of consecutive aggregate ids in id order (a few per slice when tickets and their outbox rows were written in
# order; no sort), and the ids of the rows not SENT.
SWEEP_OUTBOX_SQL = """
SELECT min(a), max(a), array_agg(id) FILTER (WHERE unsent) FROM (
    SELECT id, a, unsent, count(*) FILTER (WHERE brk) OVER (ORDER BY id) AS run FROM (
        SELECT id, {aggregate_id} AS a, status <> 'SENT' AS unsent,
               {aggregate_id} IS NULL OR lag({aggregate_id}) OVER w IS NULL
               OR {aggregate_id} NOT BETWEEN lag({aggregate_id}) OVER w AND lag({aggregate_id}) OVER w + 1 AS brk
        FROM outbox_message WHERE id >= %s AND id < %s
        WINDOW w AS (ORDER BY id)
    ) marked
) runs
GROUP BY run
"""
SWEEP_OUTBOX_ROWS_SQL = "SELECT {columns} FROM outbox_message WHERE id = ANY(%s::bigint[])"
# Ticket slice: the count of COMPLETED tickets with an advisor, and the ids of the rows that matter (active,
# COMPLETED without completed_at, without an outbox row according to the bitmap slice passed in, completed since
# start-up during the first sweep), whose rows are then read by id.
SWEEP_TICKET_SQL = """
SELECT count(*) FILTER (WHERE status = 'COMPLETED' AND assigned_advisor_id IS NOT NULL),
       array_agg(id) FILTER (
           WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS') OR (status = 'COMPLETED' AND completed_at IS NULL)
              OR {no_outbox} OR completed_at >= to_timestamp(%(since)s))
FROM ticket WHERE id >= %(lo)s AND id < %(hi)s
"""
SWEEP_TICKET_ROWS_SQL = "SELECT {columns}, {no_outbox} FROM ticket WHERE id = ANY(%(ids)s::bigint[])"
NO_OUTBOX_BIT = "get_bit(%(bits)s, (id - %(lo)s)::int) = 0"
# Ids per sweep slice: the step adapts to the time a slice takes, within these bounds (multiples of 8).
SLICE_MIN = 512
SLICE_MAX = 2_000_000


@dataclass(slots=True)
class Ticket:
    xmin: int
    status: str
    queue: str
    national_id: str
    advisor: int | None
    created: float | None
    started: float | None


@dataclass(slots=True)
class Unsent:
    xmin: int
    status: str
    attempts: int | None
    created: float | None


def pg_array(values: Iterable[int]) -> str:
    """An array literal: psycopg's list adapter checks every element (10 ms per 10,000 ids), join does not."""
    return "{" + ",".join(map(str, values)) + "}"


class Bitmap:
    """One bit per ticket id: set when an outbox row names that ticket."""

    def __init__(self) -> None:
        self.bits = bytearray()

    def _ensure(self, bit: int) -> None:
        need = (bit >> 3) + 1
        if need > len(self.bits):
            self.bits.extend(bytes(max(need, len(self.bits) * 5 // 4) - len(self.bits)))

    def set_range(self, lo: int, hi: int) -> None:
        """Sets bits lo..hi inclusive."""
        if hi < lo or lo < 0:
            return
        self._ensure(hi)
        first_full, last_full = (lo + 7) >> 3, (hi + 1) >> 3
        if first_full < last_full:
            for bit in range(lo, first_full << 3):
                self.bits[bit >> 3] |= 1 << (bit & 7)
            self.bits[first_full:last_full] = b"\xff" * (last_full - first_full)
            for bit in range(last_full << 3, hi + 1):
                self.bits[bit >> 3] |= 1 << (bit & 7)
        else:
            for bit in range(lo, hi + 1):
                self.bits[bit >> 3] |= 1 << (bit & 7)

    def __contains__(self, bit: int) -> bool:
        byte = bit >> 3
        return 0 <= byte < len(self.bits) and bool(self.bits[byte] & (1 << (bit & 7)))

    def slice(self, lo: int, hi: int) -> bytes:
        """Bits lo..hi-1 (lo a multiple of 8) as bytes, bit 0 = lo, zero-padded (PostgreSQL's get_bit order)."""
        chunk = bytes(self.bits[lo >> 3 : (hi + 7) >> 3])
        return chunk + bytes(((hi - lo + 7) >> 3) - len(chunk))


class IdFeed:
    """Rows newer than a watermark, plus the ids skipped below it until they commit or ``gap_wait`` passes."""

    def __init__(self, gap_wait: float) -> None:
        self.gap_wait = gap_wait
        self.watermark: int | None = None
        self.gaps: dict[int, float] = {}

    def start(self, max_id: int | None, backlog: int) -> None:
        self.watermark = max(0, (max_id or 0) - backlog)

    def admit(self, ids: Iterable[int], max_id: int | None, min_id: int | None, now: float) -> None:
        """Record the ids just read (new ones and filled gaps); open gaps for the ids skipped."""
        assert self.watermark is not None
        seen = sorted(ids)
        for row_id in seen:
            self.gaps.pop(row_id, None)
        if max_id is not None and max_id < self.watermark:
            # The ids went backwards (sequence restarted after the table was emptied): start over.
            self.watermark = (min_id or 1) - 1
            self.gaps.clear()
            return
        new = [i for i in seen if i > self.watermark]
        if new:
            present = set(new)
            top = new[-1]
            low = max(self.watermark + 1, top - MAX_GAPS)
            for missing in range(low, top):
                if missing not in present:
                    self.gaps[missing] = now
            self.watermark = top
        expired = [i for i, since in self.gaps.items() if now - since > self.gap_wait]
        for i in expired:
            del self.gaps[i]
        if len(self.gaps) > MAX_GAPS:
            for i in sorted(self.gaps)[: len(self.gaps) - MAX_GAPS]:
                del self.gaps[i]


@dataclass
class Walk:
    """One pass over a table's primary keys: [cursor, top] still to read."""

    table: str
    cursor: int = 0
    top: int = 0
    step: int = 8192
    started: float = 0.0  # monotonic
    active: bool = False
    took: float = 0.0  # expected seconds for the next slice

    def begin(self, lo: int | None, top: int, now: float) -> None:
        self.top = top
        # A multiple of 8: bitmap slices start on a byte. An empty table: nothing to walk.
        self.cursor = top + 1 if lo is None else lo & ~7
        self.started = now
        self.active = True

    @property
    def done(self) -> bool:
        return self.cursor > self.top


@dataclass
class Completion:
    id: int
    queue: str
    advisor: int | None
    created: float | None
    started: float | None
    completed: float


@dataclass
class SweepResult:
    """What the last complete sweep found, with when it started and how long it took."""

    started: float
    duration: float


@dataclass
class ActiveSummary:
    counts: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, status) -> tickets
    oldest_waiting: dict[str, float] = field(default_factory=dict)  # queue -> created_at epoch
    holders: dict[int, int] = field(default_factory=dict)  # advisor -> CALLED / IN_PROGRESS tickets
    pairs: dict[tuple[str, str], int] = field(default_factory=dict)  # (national_id, queue) -> active tickets
    in_progress_without_started_at: int = 0
    called_without_advisor: int = 0


def _bump(counter: dict[Any, int], key: Any, step: int) -> None:
    value = counter.get(key, 0) + step
    if value:
        counter[key] = value
    else:
        counter.pop(key, None)


@dataclass
class StateColumns:
    ticket_created_at: bool = True
    outbox: dict[str, bool] = field(default_factory=dict)
    recovery_last_heartbeat_at: bool = True


class PostgresState:
    """Active tickets, unsent outbox rows, counters and the history sweep, refreshed once per scrape."""

    def __init__(
        self,
        client: PostgresClient,
        *,
        start_epoch: float | None = None,
        gap_wait: float = 30.0,
        sweep_budget: float = 0.01,
        first_sweep_budget: float = 0.5,
    ) -> None:
        self.client = client
        self.start_epoch = time.time() if start_epoch is None else start_epoch
        self.sweep_budget = sweep_budget
        self.first_sweep_budget = first_sweep_budget
        self.ticket_feed = IdFeed(gap_wait)
        self.outbox_feed = IdFeed(gap_wait)
        self.recovery_feed = IdFeed(gap_wait)
        self.active: dict[int, Ticket] = {}
        self.unsent: dict[int, Unsent] = {}
        self.active_known = False  # every active ticket is in self.active
        self.unsent_known = False
        self.has_outbox_row = Bitmap()
        self.next_has_outbox_row: Bitmap | None = None
        self.outbox_bitmap_complete = False
        # Violations by ticket id -> xmin when seen.
        self.completed_without_completed_at: dict[int, int] = {}
        self.without_outbox: dict[int, int] = {}
        self.completed_rule_by_index = False
        self.active_by_index = False
        self.unsent_by_index = False
        # Served drift: COMPLETED tickets with an advisor.
        self.completed_with_advisor: int | None = None  # published count, None until the first sweep is done
        self.walk_completed_with_advisor = 0
        self.outbox_walk = Walk("outbox_message")
        self.ticket_walk = Walk("ticket")
        self.sweeps_done = 0
        self.first_sweep_counts = True  # during the first sweep, completions found by the walk are counted
        self.last_sweep: SweepResult | None = None
        self.sweep_started = 0.0
        self.ticket_start_max = 0
        self.outbox_min: int | None = None
        # Counters since the exporter started.
        self.created_total = LabelledCounters(QUEUE_TYPES)
        self.completed_total = LabelledCounters(QUEUE_TYPES)
        self.wait = LabelledHistograms(WAIT_BUCKETS, QUEUE_TYPES)
        self.service = LabelledHistograms(SERVICE_BUCKETS, QUEUE_TYPES)
        self.double_assigned_total = 0
        self.counted_during_first_sweep: set[int] = set()
        self.recent: dict[int, collections.deque[tuple[int, float | None, float]]] = {}
        self.sent_total = 0
        self.lag = HistogramState(LAG_BUCKETS)
        self.recovery_total = LabelledCounters(RECOVERY_TYPES)
        self.detection = HistogramState(DETECTION_BUCKETS)
        # Last snapshot.
        self.advisors: list[tuple[int, str, int, float | None]] = []
        self.now_epoch = 0.0
        self.columns = StateColumns()
        self._detected = False
        self._started: set[str] = set()  # tables whose feed has started
        self._sweep_begun = False
        self.ticket_min: int | None = None
        self._errors: dict[str, BaseException] = {}
        self._token: float | None = None
        self._aggregates = ActiveSummary()
        self._waiting: dict[str, list[tuple[float, int]]] = {}  # queue -> heap of (created_at, id)
        self._slices_this_scrape = 0

    # --- once per scrape ---

    def refresh(self, deadline: float, *parts: str) -> None:
        """Read what changed since the last scrape, once per ``deadline`` (the scrape's); then raise the error of
        the first of ``parts`` (``tickets``, ``outbox``, ``advisors``) that could not be read."""
        if self._token != deadline:
            self._token, self._errors = deadline, {}
            try:
                with self.client.cursor(deadline) as cur:
                    self._refresh(cur, deadline)
            except BaseException as exc:
                self._errors = dict.fromkeys(PARTS, exc)
        for part in parts:
            if part in self._errors:
                raise self._errors[part]

    def _detect(self, cur: Any, deadline: float) -> None:
        client = self.client
        self.columns = StateColumns(
            ticket_created_at=client.optional_column(
                "ticket",
                "created_at",
                "ticketero_tickets_created_total, ticketero_ticket_oldest_waiting_age_seconds, "
                "ticketero_ticket_wait_seconds",
                deadline,
            ),
            outbox={
                "aggregate_id": client.optional_column(
                    "outbox_message", "aggregate_id", "ticketero_tickets_without_outbox", deadline
                ),
                "created_at": client.optional_column(
                    "outbox_message",
                    "created_at",
                    "ticketero_outbox_oldest_pending_age_seconds, ticketero_outbox_publish_lag_seconds",
                    deadline,
                ),
                "attempts": client.optional_column(
                    "outbox_message", "attempts", "ticketero_outbox_pending_attempts_max", deadline
                ),
                "sent_at": client.optional_column(
                    "outbox_message",
                    "sent_at",
                    "ticketero_outbox_messages_sent_total, ticketero_outbox_publish_lag_seconds",
                    deadline,
                ),
            },
            recovery_last_heartbeat_at=client.optional_column(
                "recovery_event", "last_heartbeat_at", "ticketero_recovery_detection_seconds", deadline
            ),
        )

    @staticmethod
    def _indexed(cur: Any, table: str, *wanted: tuple[str, str]) -> bool:
        """Whether ``table`` has a btree index on each (columns, predicate fragment) of ``wanted``.

        Read with the table's own part: pg_get_indexdef waits for a lock on the table."""
        cur.execute(INDEXES_SQL, (table,))
        defs = [" ".join(row[0].split()) for row in cur.fetchall()]
        return all(
            any(f" USING btree {columns}" in d and predicate in d for d in defs)
            for columns, predicate in wanted
        )

    def _ticket_columns(self, prefix: str = "") -> str:
        created_at = f"{prefix}created_at" if self.columns.ticket_created_at else "NULL::timestamptz"
        return TICKET_COLUMNS.format(t=prefix, created_at=created_at)

    def _outbox_columns(self, prefix: str = "") -> str:
        has = self.columns.outbox
        return OUTBOX_COLUMNS.format(
            t=prefix,
            aggregate_id=f"{prefix}aggregate_id" if has["aggregate_id"] else "NULL::bigint",
            attempts=f"{prefix}attempts" if has["attempts"] else "NULL::int",
            created_at=f"{prefix}created_at" if has["created_at"] else "NULL::timestamptz",
            sent_at=f"{prefix}sent_at" if has["sent_at"] else "NULL::timestamptz",
        )

    def _refresh(self, cur: Any, deadline: float) -> None:
        if not self._detected:
            self._detect(cur, deadline)
            self._detected = True
        cur.execute(NOW_SQL)
        self.now_epoch = one(cur)[0]
        now = time.monotonic()
        completions: list[Completion] = []
        # Each table in a savepoint of its own: a locked ticket table costs the collectors that need tickets,
        # not the outbox or advisor figures (the same snapshot for all: one REPEATABLE READ transaction).
        dedupe = self.first_sweep_counts
        try:
            self._part(cur, deadline, "outbox", lambda: self._read_outbox(cur, now))
            self._part(cur, deadline, "tickets", lambda: self._read_tickets(cur, now, completions))
            self._part(cur, deadline, "advisors", lambda: self._read_advisors(cur, now))
            if not self._errors and self._started == {"outbox", "tickets"}:
                if not self._sweep_begun:
                    self._begin_sweep(now)
                    self._sweep_begun = True
                self._sweep(cur, deadline, completions)
        finally:
            # The completions read are counted even when a later read fails: they will not be read again.
            self._count_completions(completions, dedupe)
            if not self.first_sweep_counts:
                self.counted_during_first_sweep.clear()

    def _part(self, cur: Any, deadline: float, name: str, read: Any) -> None:
        """One table's reads in a savepoint, each statement limited to what is left of the scrape."""
        left = deadline - time.monotonic()
        if left < 0.01:
            self._errors[name] = TimeoutError("scrape budget used up before this table was read")
            return
        limit_ms = int(min(left, self.client.statement_timeout) * 1000)
        try:
            with cur.connection.transaction():
                cur.execute(LIMIT_SQL, (str(limit_ms),))
                read()
        except psycopg.Error as exc:
            if cur.connection.broken:
                raise
            self._errors[name] = exc

    def _bounds(self, cur: Any, table: str) -> tuple[int | None, int | None]:
        cur.execute(BOUNDS_SQL.format(table=table))
        lowest, highest = one(cur)
        return lowest, highest

    def _read_advisors(self, cur: Any, now: float) -> None:
        cur.execute(ADVISORS_SQL)
        self.advisors = cur.fetchall()
        self._read_recoveries(cur, now)

    @staticmethod
    def _ticket(row: Sequence[Any]) -> Ticket:
        _id, xmin, status, queue, national_id, advisor, created, started, _completed = row[:9]
        return Ticket(xmin, sys.intern(status), sys.intern(queue), national_id, advisor, created, started)

    @staticmethod
    def _unsent(row: Sequence[Any]) -> Unsent:
        _id, xmin, status, _aggregate, attempts, created, _sent = row[:7]
        return Unsent(xmin, sys.intern(status), attempts, created)

    # --- outbox ---

    def _read_outbox(self, cur: Any, now: float) -> None:
        """Unsent rows that changed, gaps that filled, new rows: the bitmap, the sent counter, the backlog."""
        o_min, o_max = self._bounds(cur, "outbox_message")
        self.outbox_min = o_min
        if "outbox" not in self._started:
            self.unsent_by_index = self._indexed(
                cur, "outbox_message", ("(next_attempt_at)", "PENDING"), ("(created_at)", "FAILED")
            )
            self.outbox_feed.start(o_max, FEED_START_BACKLOG)
            if self.unsent_by_index:
                cur.execute(UNSENT_BY_INDEX_SQL.format(columns=self._outbox_columns()))
                for row in cur.fetchall():
                    self.unsent[row[0]] = self._unsent(row)
                self.unsent_known = True
            self._started.add("outbox")
        # An aggregate id far above every ticket id names no ticket: not worth a bit.
        cap = (self.ticket_feed.watermark or 0) + MAX_GAPS + FEED_START_BACKLOG
        gaps = list(self.outbox_feed.gaps)
        ids = [*self.unsent, *gaps]
        seen = [u.xmin for u in self.unsent.values()] + [-1] * len(gaps)
        changed: dict[int, Any] = {}
        if ids:
            cur.execute(
                CHANGED_SQL.format(columns=self._outbox_columns("t."), table="outbox_message"),
                {"ids": pg_array(ids), "seen": pg_array(seen)},
            )
            changed = {row[0]: row[1:] for row in cur.fetchall()}
        assert self.outbox_feed.watermark is not None
        cur.execute(
            NEW_SQL.format(columns=self._outbox_columns(), table="outbox_message"),
            (self.outbox_feed.watermark,),
        )
        new_rows = cur.fetchall()
        gap_set = set(gaps)
        filled = [row for i, row in changed.items() if i in gap_set and row[0] is not None]
        self.outbox_feed.admit([row[0] for row in filled] + [row[0] for row in new_rows], o_max, o_min, now)
        for row_id, row in changed.items():
            if row_id in gap_set:
                continue
            if row[0] is None:  # deleted
                self.unsent.pop(row_id, None)
            else:
                self._see_outbox(row, cap)
        for row in [*filled, *new_rows]:
            self._see_outbox(row, cap)

    def _see_outbox(self, row: Sequence[Any], cap: int) -> None:
        row_id, _xmin, status, aggregate_id, _attempts, created, sent = row[:7]
        if aggregate_id is not None and 0 <= aggregate_id <= cap:
            self.has_outbox_row.set_range(aggregate_id, aggregate_id)
            if self.next_has_outbox_row is not None:
                self.next_has_outbox_row.set_range(aggregate_id, aggregate_id)
        if status == "SENT":
            self.unsent.pop(row_id, None)
            self._count_sent(created, sent)
        else:
            self.unsent[row_id] = self._unsent(row)

    def _count_sent(self, created: float | None, sent: float | None) -> None:
        if sent is None or sent < self.start_epoch:
            return
        self.sent_total += 1
        if created is not None:
            self.lag.observe(sent - created)

    # --- tickets ---

    def _read_tickets(self, cur: Any, now: float, completions: list[Completion]) -> None:
        t_min, t_max = self._bounds(cur, "ticket")
        self.ticket_min = t_min
        if "tickets" not in self._started:
            self.active_by_index = self._indexed(cur, "ticket", ("(queue_type, created_at)", "WAITING"))
            self.completed_rule_by_index = self._indexed(cur, "ticket", ("(id)", "completed_at IS NULL"))
            self.ticket_feed.start(t_max, FEED_START_BACKLOG)
            self.ticket_start_max = t_max or 0
            if self.active_by_index:
                cur.execute(ACTIVE_BY_INDEX_SQL.format(columns=self._ticket_columns()))
                for row in cur.fetchall():
                    self._track(row[0], self._ticket(row))
                self.active_known = True
                self.first_sweep_counts = (
                    False  # every active ticket is tracked: completions are seen as changes
                )
            self._started.add("tickets")
        if self.completed_rule_by_index:
            cur.execute(COMPLETED_WITHOUT_COMPLETED_AT_SQL, (MAX_VIOLATORS,))
            self.completed_without_completed_at = dict(cur.fetchall())
        tracked = list(self.active.items())
        violators = {
            **({} if self.completed_rule_by_index else self.completed_without_completed_at),
            **self.without_outbox,
        }
        gaps = list(self.ticket_feed.gaps)
        ids = [i for i, _ in tracked] + [i for i in violators if i not in self.active] + gaps
        seen = (
            [t.xmin for _, t in tracked]
            + [x for i, x in violators.items() if i not in self.active]
            + [-1] * len(gaps)
        )
        changed: dict[int, Any] = {}
        if ids:
            cur.execute(
                CHANGED_SQL.format(columns=self._ticket_columns("t."), table="ticket"),
                {"ids": pg_array(ids), "seen": pg_array(seen)},
            )
            changed = {row[0]: row[1:] for row in cur.fetchall()}
        assert self.ticket_feed.watermark is not None
        cur.execute(
            NEW_SQL.format(columns=self._ticket_columns(), table="ticket"), (self.ticket_feed.watermark,)
        )
        new_rows = cur.fetchall()
        gap_set = set(gaps)
        filled = [row for i, row in changed.items() if i in gap_set and row[0] is not None]
        self.ticket_feed.admit([row[0] for row in filled] + [row[0] for row in new_rows], t_max, t_min, now)
        # Changes of tracked tickets and re-checked violators.
        for row_id, row in changed.items():
            if row_id in gap_set:
                continue
            if row[0] is None:  # deleted
                self._untrack(row_id)
                self.completed_without_completed_at.pop(row_id, None)
                self.without_outbox.pop(row_id, None)
                continue
            was_active = row_id in self.active
            self._see_ticket(row, completions, transition=was_active, first_sight=False)
        for row in [*filled, *new_rows]:
            self._see_ticket(row, completions, transition=True, first_sight=True)
        # An outbox row may have arrived for a ticket reported without one.
        for row_id in list(self.without_outbox):
            if row_id in self.has_outbox_row:
                del self.without_outbox[row_id]

    def _see_ticket(
        self, row: Sequence[Any], completions: list[Completion], *, transition: bool, first_sight: bool
    ) -> None:
        """One ticket row read by id: track it, count what it completes, judge the history-wide rules."""
        row_id, xmin, status, queue, _nid, advisor, created, started, completed = row[:9]
        if first_sight and created is not None and created >= self.start_epoch:
            self.created_total.inc(queue)
        if status in ACTIVE_STATUSES:
            self._track(row_id, self._ticket(row))
        else:
            self._untrack(row_id)
            if transition and status == "COMPLETED":
                self._completed(row, completions)
        self._judge(row_id, xmin, status, completed)

    def _judge(self, row_id: int, xmin: int, status: str, completed: float | None) -> None:
        """The history-wide rules for one ticket read by id."""
        if not self.completed_rule_by_index:
            if status == "COMPLETED" and completed is None:
                if len(self.completed_without_completed_at) < MAX_VIOLATORS:
                    self.completed_without_completed_at[row_id] = xmin
            else:
                self.completed_without_completed_at.pop(row_id, None)
        if self.columns.outbox.get("aggregate_id"):
            # Judged against the bitmap only when it covers this ticket: for a ticket newer than the exporter
            # (its outbox row is new too) or once the outbox history has been read.
            covered = self.outbox_bitmap_complete or row_id > self.ticket_start_max
            if covered and row_id not in self.has_outbox_row:
                if len(self.without_outbox) < MAX_VIOLATORS:
                    self.without_outbox[row_id] = xmin
            elif row_id in self.has_outbox_row:
                self.without_outbox.pop(row_id, None)

    def _completed(self, row: Sequence[Any], completions: list[Completion]) -> None:
        """A ticket seen COMPLETED for the first time (a tracked ticket that completed, or a new row)."""
        row_id, _xmin, _status, queue, _nid, advisor, created, started, completed = row[:9]
        if advisor is not None:
            self.completed_with_advisor_event(row_id)
        if completed is not None:
            completions.append(Completion(row_id, queue, advisor, created, started, completed))

    def completed_with_advisor_event(self, row_id: int) -> None:
        if self.completed_with_advisor is not None:
            self.completed_with_advisor += 1
        walk = self.ticket_walk
        if row_id < walk.cursor or row_id > walk.top or not walk.active:
            self.walk_completed_with_advisor += 1

    def _count_completions(self, completions: list[Completion], dedupe: bool) -> None:
        """Counters, histograms and the double-assignment check for this scrape's completions.

        ``dedupe``: during the first sweep, a ticket read by the feed at start-up may be met again by the walk.
        """
        for c in completions:
            if c.advisor is not None and c.started is not None:
                recent = self.recent.setdefault(c.advisor, collections.deque(maxlen=RECENT_PER_ADVISOR))
                recent.append((c.id, c.started, c.completed))
        if not completions:
            return
        holding: dict[int, list[tuple[int, float]]] = {}
        for row_id, t in self.active.items():
            if t.status in HOLDING_STATUSES and t.advisor is not None and t.started is not None:
                holding.setdefault(t.advisor, []).append((row_id, t.started))
        for c in completions:
            if c.completed < self.start_epoch:
                continue
            if dedupe:
                if c.id in self.counted_during_first_sweep:
                    continue
                self.counted_during_first_sweep.add(c.id)
            self.completed_total.inc(c.queue)
            if c.started is not None:
                if c.created is not None:
                    self.wait.observe(c.queue, c.started - c.created)
                self.service.observe(c.queue, c.completed - c.started)
            if c.advisor is None or c.started is None:
                continue
            started, completed = c.started, c.completed
            overlaps = any(
                o_id != c.id and o_started < completed for o_id, o_started in holding.get(c.advisor, ())
            ) or any(
                o_id != c.id and o_completed > started and o_started is not None and o_started < completed
                for o_id, o_started, o_completed in self.recent.get(c.advisor, ())
            )
            if overlaps:
                self.double_assigned_total += 1

    # --- recovery events ---

    def _read_recoveries(self, cur: Any, now: float) -> None:
        _r_min, r_max = self._bounds(cur, "recovery_event")
        if self.recovery_feed.watermark is None:
            self.recovery_feed.start(r_max, FEED_START_BACKLOG)
        detection = DETECTION_WITH_HEARTBEAT if self.columns.recovery_last_heartbeat_at else "NULL::float8"
        assert self.recovery_feed.watermark is not None
        cur.execute(
            RECOVERY_NEW_SQL.format(columns=RECOVERY_COLUMNS.format(detection=detection)),
            (self.recovery_feed.watermark, list(self.recovery_feed.gaps)),
        )
        rows = cur.fetchall()
        self.recovery_feed.admit([row[0] for row in rows], r_max, None, now)
        for _id, detected, recovery_type, seconds in rows:
            if detected is None or detected < self.start_epoch:
                continue
            self.recovery_total.inc(recovery_type)
            if seconds is not None:
                self.detection.observe(seconds)

    # --- the sweep ---

    def _begin_sweep(self, now: float) -> None:
        """A new sweep: the outbox history first (which tickets have an outbox row), then the tickets."""
        self.sweep_started = now
        if self.columns.outbox.get("aggregate_id"):
            self.next_has_outbox_row = Bitmap()
        self.outbox_walk.begin(self.outbox_min, self.outbox_feed.watermark or 0, now)
        self.ticket_walk.active = False

    def _outbox_walk_done(self) -> None:
        self.outbox_walk.active = False
        if self.next_has_outbox_row is not None:
            self.has_outbox_row = self.next_has_outbox_row
            self.next_has_outbox_row = None
            self.outbox_bitmap_complete = True
        self.unsent_known = True

    def _sweep(self, cur: Any, deadline: float, completions: list[Completion]) -> None:
        """Walk the history for up to this scrape's sweep budget; at most one sweep completes per scrape."""
        budget = self.first_sweep_budget if self.sweeps_done == 0 else self.sweep_budget
        now = time.monotonic()
        # Never more than half of what is left of the scrape: the other collectors and the rendering come after.
        stop_at = min(now + budget, now + (deadline - now) / 2)
        self._slices_this_scrape = 0
        outbox, tickets, t_min = self.outbox_walk, self.ticket_walk, self.ticket_min
        # Everything behind a walk's cursor deleted (the test plan's DELETE between runs): skip ahead, or for the
        # tickets start over, since the slices already counted are gone.
        if outbox.active and (self.outbox_min is None or self.outbox_min > outbox.cursor):
            outbox.begin(self.outbox_min, outbox.top, outbox.started)
        if tickets.active and (t_min is None or t_min > tickets.cursor):
            tickets.begin(t_min, self.ticket_feed.watermark or 0, tickets.started)
            self.walk_completed_with_advisor = 0
        while True:
            if outbox.active:
                if not outbox.done and not self._walk_slice(cur, outbox, stop_at, self._outbox_slice):
                    return
                if outbox.done:
                    self._outbox_walk_done()
                continue
            if not tickets.active:
                # The top is the feed's watermark now: every id above it is the feed's, every id below the walk's.
                tickets.begin(t_min, self.ticket_feed.watermark or 0, time.monotonic())
                self.walk_completed_with_advisor = 0
            if not tickets.done and not self._walk_slice(
                cur, tickets, stop_at, lambda c, lo, hi: self._ticket_slice(c, lo, hi, completions)
            ):
                return
            if tickets.done:
                self._sweep_done()
                return

    def _walk_slice(self, cur: Any, walk: Walk, stop_at: float, read: Any) -> bool:
        """Reads [cursor, cursor + step) within the budget; False (cursor unmoved) when the budget is used up."""
        left = stop_at - time.monotonic()
        # At least one slice per scrape while the scrape has time, however small the budget; after that, only a
        # slice expected to end within the budget (the last one took ``took``).
        if self._slices_this_scrape and left < walk.took or left < -0.2:
            return False
        self._slices_this_scrape += 1
        left = max(left, 0.01)
        lo = walk.cursor
        hi = min(walk.top + 1, lo + walk.step)
        # A slice that runs past the budget is cancelled (only it: a savepoint) and retried smaller next time.
        limit_ms = max(10, min(int(left * 1000), int(self.client.statement_timeout * 1000)))
        started = time.monotonic()
        try:
            with cur.connection.transaction():
                cur.execute(LIMIT_SQL, (str(limit_ms),))
                read(cur, lo, hi)
        except psycopg.errors.QueryCanceled:
            walk.step = max(SLICE_MIN, (walk.step // 4) & ~7)
            return False
        took = max(time.monotonic() - started, 1e-4)
        walk.cursor = hi
        # Aim each slice at a third of the steady per-scrape budget, growing or shrinking at most 4x at a time.
        target = max(self.sweep_budget, 0.005) / 3
        walk.step = int(max(SLICE_MIN, min(walk.step * 4, SLICE_MAX, walk.step * target / took))) & ~7
        walk.took = took * walk.step / max(hi - lo, 1)
        return True

    def _outbox_slice(self, cur: Any, lo: int, hi: int) -> None:
        has_aggregate = bool(self.columns.outbox.get("aggregate_id"))
        cur.execute(
            SWEEP_OUTBOX_SQL.format(aggregate_id="aggregate_id" if has_aggregate else "NULL::bigint"),
            (lo, hi),
        )
        runs = cur.fetchall()
        unsent_ids = [i for _first, _last, ids in runs if ids for i in ids if i not in self.unsent]
        if unsent_ids:
            cur.execute(SWEEP_OUTBOX_ROWS_SQL.format(columns=self._outbox_columns()), (pg_array(unsent_ids),))
            for row in cur.fetchall():
                if row[2] != "SENT":
                    self.unsent.setdefault(row[0], self._unsent(row))
        if self.next_has_outbox_row is not None:
            cap = (self.ticket_feed.watermark or 0) + FEED_START_BACKLOG
            for first, last, _ids in runs:
                if first is not None:
                    self.next_has_outbox_row.set_range(max(first, 0), min(last, cap))

    def _ticket_slice(self, cur: Any, lo: int, hi: int, completions: list[Completion]) -> None:
        judge_outbox = bool(self.columns.outbox.get("aggregate_id")) and self.outbox_bitmap_complete
        params: dict[str, Any] = {
            "lo": lo,
            "hi": hi,
            "since": self.start_epoch if self.first_sweep_counts else None,
        }
        if judge_outbox:
            params["bits"] = self.has_outbox_row.slice(lo, hi)
        no_outbox = NO_OUTBOX_BIT if judge_outbox else "false"
        cur.execute(SWEEP_TICKET_SQL.format(no_outbox=no_outbox), params)
        completed_with_advisor, ids = one(cur)
        rows: list[Any] = []
        if ids:
            params["ids"] = pg_array(ids)
            cur.execute(
                SWEEP_TICKET_ROWS_SQL.format(columns=self._ticket_columns(), no_outbox=no_outbox), params
            )
            rows = cur.fetchall()
        # Only now that every query of the slice succeeded: a cancelled slice is read again, and must not count twice.
        self.walk_completed_with_advisor += completed_with_advisor
        for row in rows:
            row_id, xmin, status, queue, _nid, advisor, created, started, completed, without_outbox = row
            if status in ACTIVE_STATUSES:
                if row_id not in self.active:
                    self._track(row_id, self._ticket(row))
            elif self.first_sweep_counts and status == "COMPLETED" and completed is not None:
                # Completed after the exporter started but before the walk got here: not tracked, so not
                # seen completing. Counted now (only during the first sweep: afterwards every active ticket
                # is tracked and its completion seen as a change).
                completions.append(Completion(row_id, queue, advisor, created, started, completed))
            if without_outbox and len(self.without_outbox) < MAX_VIOLATORS:
                self.without_outbox[row_id] = xmin
            if (
                not self.completed_rule_by_index
                and status == "COMPLETED"
                and completed is None
                and len(self.completed_without_completed_at) < MAX_VIOLATORS
            ):
                self.completed_without_completed_at[row_id] = xmin

    def _sweep_done(self) -> None:
        now = time.monotonic()
        self.completed_with_advisor = self.walk_completed_with_advisor
        self.last_sweep = SweepResult(started=self.sweep_started, duration=now - self.sweep_started)
        if self.sweeps_done == 0:
            log.info("first sweep of the history done in %.1f s", now - self.sweep_started)
        self.sweeps_done += 1
        self.active_known = True
        self.first_sweep_counts = False
        self.ticket_walk.active = False
        self._begin_sweep(now)

    # --- what the collectors publish ---

    # The active tickets' figures are kept up to date as tickets are tracked and dropped, so publishing them
    # costs the changes, not the active tickets.

    def _track(self, row_id: int, ticket: Ticket) -> None:
        if row_id in self.active:
            self._untrack(row_id)
        self.active[row_id] = ticket
        self._count(ticket, 1)
        if ticket.status == "WAITING" and ticket.created is not None:
            heapq.heappush(self._waiting.setdefault(ticket.queue, []), (ticket.created, row_id))

    def _untrack(self, row_id: int) -> None:
        ticket = self.active.pop(row_id, None)
        if ticket is not None:
            self._count(ticket, -1)

    def _count(self, ticket: Ticket, step: int) -> None:
        agg = self._aggregates
        _bump(agg.counts, (ticket.queue, ticket.status), step)
        _bump(agg.pairs, (ticket.national_id, ticket.queue), step)
        if ticket.status in HOLDING_STATUSES:
            if ticket.advisor is not None:
                _bump(agg.holders, ticket.advisor, step)
            elif ticket.status == "CALLED":
                agg.called_without_advisor += step
            if ticket.status == "IN_PROGRESS" and ticket.started is None:
                agg.in_progress_without_started_at += step

    def summary(self) -> ActiveSummary:
        """The active tickets' figures, with the oldest WAITING ticket per queue brought up to date."""
        agg = self._aggregates
        agg.oldest_waiting = {}
        for queue, heap in self._waiting.items():
            while heap:
                created, row_id = heap[0]
                ticket = self.active.get(row_id)
                if ticket is not None and ticket.status == "WAITING" and ticket.created == created:
                    agg.oldest_waiting[queue] = created
                    break
                heapq.heappop(heap)
            waiting = agg.counts.get((queue, "WAITING"), 0)
            if len(heap) > 2 * waiting + 1000:  # entries of tickets that moved on: rebuild
                heap[:] = [
                    (t.created, i)
                    for i, t in self.active.items()
                    if t.queue == queue and t.status == "WAITING" and t.created is not None
                ]
                heapq.heapify(heap)
        return agg

    def sweep_age(self) -> float | None:
        if self.last_sweep is None:
            return None
        return time.monotonic() - self.last_sweep.started

    def served_drift(self) -> float | None:
        if self.completed_with_advisor is None:
            return None
        served = sum(row[2] for row in self.advisors)
        return float(served - self.completed_with_advisor)


class PostgresConcernCollector(ConcernCollector):
    """A concern read from the scrape's one PostgreSQL snapshot (tickets, outbox, advisors, consistency)."""

    backend = "postgres"

    def __init__(self, state: PostgresState) -> None:
        self.state = state
