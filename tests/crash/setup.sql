-- Crash test data: the reference schema with :campaigns campaigns and :recipients pending
-- recipients (message ids 'wamid.C<n>', spread round-robin over the campaigns), attached.
-- crash_events logs, in the same transaction as the status functions, every event a load
-- client sent, so after recovery "logged" must equal "applied".
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\i :schema_file
CREATE EXTENSION campaign_counters;
INSERT INTO marketing_campaigns (name, status)
SELECT 'crash-' || i, 'running' FROM generate_series(1, :campaigns) AS i;
INSERT INTO campaign_recipients (campaign_id, phone_number, whatsapp_message_id)
SELECT c.id, 'p' || n, 'wamid.C' || n
  FROM generate_series(1, :recipients) AS n
  JOIN (SELECT id, row_number() OVER (ORDER BY name) - 1 AS i FROM marketing_campaigns) AS c
    ON c.i = n % :campaigns;
SELECT campaign_counters.attach();
CREATE TABLE crash_events (
    client              int         NOT NULL,
    seq                 int         NOT NULL,
    whatsapp_message_id text        NOT NULL,
    status              text        NOT NULL,
    occurred_at         timestamptz NOT NULL
);
VACUUM ANALYZE;
CHECKPOINT;
