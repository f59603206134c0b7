-- Indexes the Ticketero exporter relies on, so that a scrape costs what the active tickets cost and not
-- what the history costs. Apply them to a database whose schema lacks them (for example the Java original):
--     psql "$DSN" -f exporters/sql/indexes.sql
-- The reference schema (ticketero/migrations/) already has all of them. The exporter
-- checks for them at start and logs a warning naming each one that is missing.

-- Active tickets per queue and status, oldest WAITING, rules on active tickets (tickets collector,
-- consistency collector).
CREATE INDEX IF NOT EXISTS ix_ticket_active_queue ON ticket (queue_type, created_at)
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS');
-- Duplicate active tickets per (national_id, queue).
CREATE INDEX IF NOT EXISTS ix_ticket_active_national_id ON ticket (national_id, queue_type)
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS');
-- Double-assigned advisors, BUSY advisors without a ticket.
CREATE INDEX IF NOT EXISTS ix_ticket_active_advisor ON ticket (assigned_advisor_id)
    WHERE status IN ('CALLED', 'IN_PROGRESS');
-- Watermark range scans behind tickets_created_total / tickets_completed_total and the wait, service
-- histograms and the served-drift stream.
CREATE INDEX IF NOT EXISTS ix_ticket_created_at ON ticket (created_at);
CREATE INDEX IF NOT EXISTS ix_ticket_completed_at ON ticket (completed_at) WHERE completed_at IS NOT NULL;
-- Outbox backlog (PENDING and FAILED read separately), atomicity check, sent counter and publish lag.
CREATE INDEX IF NOT EXISTS ix_outbox_pending ON outbox_message (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS ix_outbox_failed ON outbox_message (created_at) WHERE status = 'FAILED';
CREATE INDEX IF NOT EXISTS ix_outbox_aggregate ON outbox_message (aggregate_id);
CREATE INDEX IF NOT EXISTS ix_outbox_sent_at ON outbox_message (sent_at) WHERE sent_at IS NOT NULL;
-- Recovery events counter and detection histogram.
CREATE INDEX IF NOT EXISTS ix_recovery_event_detected_at ON recovery_event (detected_at);

-- The rule "COMPLETED without completed_at" is checked over the whole history.
-- This index is empty while the data is consistent, so it costs nothing to keep, and turns a full-table scan
-- (seconds at 10 million tickets) into a lookup.
CREATE INDEX IF NOT EXISTS ix_ticket_completed_without_completed_at ON ticket (id)
    WHERE status = 'COMPLETED' AND completed_at IS NULL;
