-- Indexes the Ticketero exporter uses when they exist. It needs none of them: every scrape reads through primary
-- keys (docs/exporters.md, "How the figures are obtained"). With them, what it otherwise learns from a sweep of
-- the history is known at once. Apply them to a database whose schema lacks them (for example the Java original):
--     psql "$DSN" -f exporters/sql/indexes.sql
-- The reference schema (ticketero/migrations/) already has all of them. The exporter says at start which are
-- missing. All are partial indexes on rows that are few (active tickets, unsent outbox rows, broken tickets), so
-- they are small and cheap to keep whatever the history.

-- The active tickets at the first scrape (otherwise after the first sweep of the history).
CREATE INDEX IF NOT EXISTS ix_ticket_active_queue ON ticket (queue_type, created_at)
    WHERE status IN ('WAITING', 'CALLED', 'IN_PROGRESS');
-- The rule "COMPLETED without completed_at" over the whole history at every scrape (otherwise once per sweep).
-- Empty while the data is consistent.
CREATE INDEX IF NOT EXISTS ix_ticket_completed_without_completed_at ON ticket (id)
    WHERE status = 'COMPLETED' AND completed_at IS NULL;
-- The outbox backlog (PENDING and FAILED rows) at the first scrape (otherwise after the first sweep).
CREATE INDEX IF NOT EXISTS ix_outbox_pending ON outbox_message (next_attempt_at) WHERE status = 'PENDING';
CREATE INDEX IF NOT EXISTS ix_outbox_failed ON outbox_message (created_at) WHERE status = 'FAILED';
