-- Soak data: the reference schema, a few hot campaigns with many recipients and many cold ones
-- with few, attached to campaign_counters. psql variables: schema_file, hot, hot_size, cold,
-- cold_size. Recipient "slots" n = 1 .. hot*hot_size + cold*cold_size: slot n is the recipient
-- with phone_number 'p<n>' and, once the app has sent it, whatsapp_message_id 'wamid.S<n>'.
-- One slot in ten has no recipient yet, one in four has no message id yet: events for those
-- are parked and applied when the app inserts the recipient or assigns the id.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
\i :schema_file
-- Harness only: one recipient per slot, so concurrent inserts of a slot do nothing.
CREATE UNIQUE INDEX campaign_recipients_phone_key ON campaign_recipients (phone_number);
CREATE EXTENSION campaign_counters;

CREATE TABLE soak_campaigns (i int PRIMARY KEY, id uuid NOT NULL UNIQUE, hot boolean NOT NULL);
-- What every soak transaction did (outcome of each status event, recalc results, ...).
CREATE UNLOGGED TABLE soak_outcomes (kind text NOT NULL, outcome text NOT NULL);

INSERT INTO marketing_campaigns (name, status)
SELECT CASE WHEN i <= :hot THEN 'hot-' ELSE 'cold-' END || i, 'running'
  FROM generate_series(1, :hot + :cold) AS i;
INSERT INTO soak_campaigns (i, id, hot)
SELECT split_part(name, '-', 2)::int, id, name LIKE 'hot-%' FROM marketing_campaigns;

INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id,
                                 sent_at, delivered_at, read_at, failed_at)
SELECT c.id, 'p' || s.n, s.status, s.wamid,
       CASE WHEN s.status IN ('sent', 'delivered', 'read') THEN s.at END,
       CASE WHEN s.status IN ('delivered', 'read') THEN s.at + interval '20 s' END,
       CASE WHEN s.status = 'read' THEN s.at + interval '40 s' END,
       CASE WHEN s.status = 'failed' THEN s.at END
  FROM (SELECT n,
               CASE WHEN n <= :hot * :hot_size THEN 1 + (n - 1) % :hot
                    ELSE :hot + 1 + (n - :hot * :hot_size - 1) % :cold END AS home,
               CASE WHEN h2 % 4 <> 0 THEN 'wamid.S' || n END AS wamid,
               CASE WHEN h2 % 4 = 0 THEN (ARRAY['pending', 'pending', 'pending', 'pending', 'failed'])[1 + h % 5]
                    ELSE (ARRAY['pending', 'sent', 'sent', 'sent', 'delivered', 'delivered', 'read', 'failed'])[1 + h % 8]
               END AS status,
               to_timestamp(1750000000 + n * 60 + 3) AS at
          FROM (SELECT n, abs(hashint4(n)::bigint) AS h, abs(hashint4(n + 7919)::bigint) AS h2
                  FROM generate_series(1, :hot * :hot_size + :cold * :cold_size) AS n) AS g
         WHERE n % 10 <> 0) AS s
  JOIN soak_campaigns AS c ON c.i = s.home;

SELECT campaign_counters.attach();
VACUUM ANALYZE;
