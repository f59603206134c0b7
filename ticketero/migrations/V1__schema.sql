-- Ticketero schema, version 1.
--
-- The tables and columns the NFR plan's SQL checks name (ticket, advisor, outbox_message, recovery_event,
-- ticket_event) are kept exactly as the Java original has them, so the exporters and checks written against
-- this schema run unchanged against the original. Columns marked "reference only" are extras of the Python
-- reference service; the exporters detect them at start and skip what depends on them when absent.

CREATE TABLE advisor (
    id                    BIGSERIAL PRIMARY KEY,
    name                  VARCHAR(100) NOT NULL,
    email                 VARCHAR(100),
    status                VARCHAR(20)  NOT NULL DEFAULT 'AVAILABLE'
                          CHECK (status IN ('AVAILABLE', 'BUSY', 'BREAK', 'OFFLINE')),
    module_number         INTEGER      NOT NULL,
    total_tickets_served  INTEGER      NOT NULL DEFAULT 0,
    recovery_count        INTEGER      NOT NULL DEFAULT 0,
    last_heartbeat        TIMESTAMPTZ,
    worker_id             VARCHAR(100),                 -- reference only: which worker holds the advisor
    created_at            TIMESTAMPTZ  NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ  NOT NULL DEFAULT now()
);

CREATE TABLE ticket (
    id                      BIGSERIAL PRIMARY KEY,
    codigo_referencia       UUID         NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    numero                  VARCHAR(20)  NOT NULL UNIQUE,
    national_id             VARCHAR(20)  NOT NULL,
    telefono                VARCHAR(20),
    branch_office           VARCHAR(100) NOT NULL,
    queue_type              VARCHAR(20)  NOT NULL
                            CHECK (queue_type IN ('CAJA', 'PERSONAL', 'EMPRESAS', 'GERENCIA')),
    status                  VARCHAR(20)  NOT NULL DEFAULT 'WAITING'
                            CHECK (status IN ('WAITING', 'CALLED', 'IN_PROGRESS', 'COMPLETED', 'CANCELLED', 'NO_SHOW')),
    position_in_queue       INTEGER      NOT NULL,
    estimated_wait_minutes  INTEGER,
    assigned_advisor_id     BIGINT       REFERENCES advisor (id),
    assigned_module_number  INTEGER,
    created_at              TIMESTAMPTZ  NOT NULL DEFAULT now(),
    called_at               TIMESTAMPTZ,
    started_at              TIMESTAMPTZ,
    completed_at            TIMESTAMPTZ,
    updated_at              TIMESTAMPTZ  NOT NULL DEFAULT now()
);

-- "Active" means WAITING, CALLED or IN_PROGRESS. Every query on active tickets goes through these partial
-- indexes, so its cost follows the active tickets and not the history (millions of COMPLETED rows).
CREATE INDEX ix_ticket_active_queue ON ticket (queue_type, created_at)
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS');
CREATE INDEX ix_ticket_active_national_id ON ticket (national_id, queue_type)
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS');
CREATE INDEX ix_ticket_active_advisor ON ticket (assigned_advisor_id)
    WHERE status IN ('CALLED', 'IN_PROGRESS');
-- Completions by time: throughput windows read a small range of this index.
CREATE INDEX ix_ticket_completed_at ON ticket (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX ix_ticket_created_at ON ticket (created_at);

-- No unique index on (national_id, queue_type) for active tickets on purpose: the API serialises creation per
-- nationalId and queue with an advisory lock, and the consistency exporter must be able to see a duplicate
-- if an implementation lets one through (the Java original has no such constraint either).

CREATE SEQUENCE ticket_numero_seq;

CREATE TABLE ticket_event (
    id           BIGSERIAL PRIMARY KEY,
    ticket_id    BIGINT      NOT NULL REFERENCES ticket (id) ON DELETE CASCADE,
    event_type   VARCHAR(50) NOT NULL,
    from_status  VARCHAR(20),
    to_status    VARCHAR(20),
    advisor_id   BIGINT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ix_ticket_event_ticket ON ticket_event (ticket_id);

CREATE TABLE outbox_message (
    id               BIGSERIAL PRIMARY KEY,
    aggregate_type   VARCHAR(50)  NOT NULL DEFAULT 'TICKET',
    aggregate_id     BIGINT       NOT NULL,
    event_type       VARCHAR(50)  NOT NULL,
    routing_key      VARCHAR(100) NOT NULL,
    payload          JSONB        NOT NULL,
    status           VARCHAR(20)  NOT NULL DEFAULT 'PENDING'
                     CHECK (status IN ('PENDING', 'SENT', 'FAILED')),
    attempts         INTEGER      NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ  NOT NULL DEFAULT now(),
    last_error       TEXT,
    created_at       TIMESTAMPTZ  NOT NULL DEFAULT now(),
    sent_at          TIMESTAMPTZ
);
CREATE INDEX ix_outbox_pending ON outbox_message (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX ix_outbox_failed ON outbox_message (created_at) WHERE status = 'FAILED';
CREATE INDEX ix_outbox_aggregate ON outbox_message (aggregate_id);
CREATE INDEX ix_outbox_sent_at ON outbox_message (sent_at) WHERE sent_at IS NOT NULL;

CREATE TABLE recovery_event (
    id                 BIGSERIAL PRIMARY KEY,
    recovery_type      VARCHAR(30) NOT NULL,            -- DEAD_WORKER, ...
    advisor_id         BIGINT,
    ticket_id          BIGINT,
    worker_id          VARCHAR(100),
    last_heartbeat_at  TIMESTAMPTZ,                     -- reference only: lets detection latency be measured
    detected_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    details            TEXT
);
CREATE INDEX ix_recovery_event_detected_at ON recovery_event (detected_at);
