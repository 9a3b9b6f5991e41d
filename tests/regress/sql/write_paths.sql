-- Every kind of write keeps the counters right, in the same transaction.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- Fixture: the campaigns and recipients attach.sql starts with, attached.
INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'alpha', 42),
    ('00000000-0000-0000-0000-00000000000b', 'beta', 0);
INSERT INTO campaign_recipients (campaign_id, phone_number, status)
SELECT '00000000-0000-0000-0000-00000000000a', '+1555000' || i, (ARRAY['pending', 'sent', 'read'])[1 + i % 3]
  FROM generate_series(1, 9) i;
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
-- (alpha starts with 3 pending, 3 sent, 3 read, as in the attach test.)
SELECT * FROM counters;

-- Single-row and multi-row INSERT.
INSERT INTO campaign_recipients (campaign_id, phone_number) VALUES ('00000000-0000-0000-0000-00000000000b', '+1');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
SELECT '00000000-0000-0000-0000-00000000000b', '+2' || i, 'sent', 'wamid.b' || i FROM generate_series(1, 100) i;
SELECT * FROM counters;

-- COPY.
COPY campaign_recipients (campaign_id, phone_number, status) FROM stdin;
00000000-0000-0000-0000-00000000000b	+301	delivered
00000000-0000-0000-0000-00000000000b	+302	failed
00000000-0000-0000-0000-00000000000a	+303	read
\.
SELECT * FROM counters;

-- INSERT ... ON CONFLICT DO UPDATE: the update path counts as an update, the insert path as an insert.
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id) VALUES
    ('00000000-0000-0000-0000-00000000000b', '+2x', 'read', 'wamid.b1'),
    ('00000000-0000-0000-0000-00000000000b', '+2y', 'pending', 'wamid.new')
ON CONFLICT (whatsapp_message_id) DO UPDATE SET status = excluded.status;
SELECT * FROM counters;

-- Bulk status UPDATE, and a rollback leaves counters as they were.
UPDATE campaign_recipients SET status = 'delivered' WHERE whatsapp_message_id LIKE 'wamid.b_%' AND status = 'sent';
SELECT * FROM counters;
BEGIN;
UPDATE campaign_recipients SET status = 'failed' WHERE campaign_id = '00000000-0000-0000-0000-00000000000b';
SELECT * FROM counters;
ROLLBACK;
SELECT * FROM counters;

-- Moving recipients to another campaign moves their counts.
UPDATE campaign_recipients SET campaign_id = '00000000-0000-0000-0000-00000000000a'
 WHERE whatsapp_message_id IN ('wamid.b2', 'wamid.b3', 'wamid.b4');
SELECT * FROM counters;

-- A statement whose net change is zero writes nothing to the campaign row (its xmin stays).
CREATE TEMP TABLE before AS SELECT id, xmin::text AS version FROM marketing_campaigns;
UPDATE campaign_recipients SET phone_number = phone_number || '!' WHERE campaign_id = '00000000-0000-0000-0000-00000000000b';
UPDATE campaign_recipients SET status = CASE status WHEN 'read' THEN 'sent' ELSE status END
 WHERE campaign_id = '00000000-0000-0000-0000-00000000000a' AND status = 'pending';
SELECT c.name, b.version = c.xmin::text AS untouched
  FROM marketing_campaigns c JOIN before b USING (id) ORDER BY c.name;

-- An unknown status rolls the whole statement back, with nothing lost.
INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES
    ('00000000-0000-0000-0000-00000000000b', '+9', 'pending'),
    ('00000000-0000-0000-0000-00000000000b', '+9', 'queued');
UPDATE campaign_recipients SET status = 'DELIVERED' WHERE whatsapp_message_id = 'wamid.b9';
SELECT * FROM counters;

-- DELETE, and ON DELETE CASCADE from the campaign.
DELETE FROM campaign_recipients WHERE whatsapp_message_id IN ('wamid.b5', 'wamid.b6');
SELECT * FROM counters;
INSERT INTO marketing_campaigns (id, name) VALUES ('00000000-0000-0000-0000-00000000000c', 'gamma');
INSERT INTO campaign_recipients (campaign_id, phone_number, status)
SELECT '00000000-0000-0000-0000-00000000000c', '+4' || i, 'read' FROM generate_series(1, 5) i;
SELECT * FROM counters;
DELETE FROM marketing_campaigns WHERE name = 'gamma';
SELECT * FROM counters;
SELECT * FROM campaign_counters.verify_campaign_counters();

-- TRUNCATE: counters of the attached campaigns go to zero; total_target_customers is the application's.
BEGIN;
TRUNCATE campaign_recipients;
SELECT * FROM counters;
ROLLBACK;
SELECT * FROM counters;
SELECT * FROM campaign_counters.verify_campaign_counters();

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
