-- apply_whatsapp_webhook(): Meta's raw POST body, set-based, one outcome per status item.
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
SET timezone = 'UTC';
\getenv abs_srcdir PG_ABS_SRCDIR
\set fixtures :abs_srcdir '/../fixtures/whatsapp'
-- The fixtures are read by psql, so the server needs no access to the checkout.
\set mixed_batch `cat :fixtures/mixed_batch.json`
\set read `cat :fixtures/read.json`
\set sent_with_pricing `cat :fixtures/sent_with_pricing.json`
\set failed_131049 `cat :fixtures/failed_131049.json`
INSERT INTO marketing_campaigns (id, name) VALUES ('00000000-0000-0000-0000-00000000000e', 'epsilon');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id) VALUES
    ('00000000-0000-0000-0000-00000000000e', '+16505550001', 'sent', 'wamid.A1'),
    ('00000000-0000-0000-0000-00000000000e', '+16505550002', 'sent', 'wamid.A2'),
    ('00000000-0000-0000-0000-00000000000e', '+16505550003', 'sent', 'wamid.A3'),
    ('00000000-0000-0000-0000-00000000000e', '+16505550004', 'sent', 'wamid.A4');

-- Duplicates, out of order, played, an untracked status and an unknown id in one body.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(:'mixed_batch'::jsonb);
-- Meta retries: the same body again changes nothing.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(:'mixed_batch'::jsonb);
SELECT whatsapp_message_id, status, sent_at, delivered_at, read_at FROM campaign_recipients
 WHERE campaign_id = '00000000-0000-0000-0000-00000000000e' ORDER BY 1;
SELECT * FROM counters WHERE name = 'epsilon';

-- The other fixtures: a read, a sent with pricing, a failure with Meta's error details.
SELECT f, jsonb_path_query_array(body, '$.entry[*].changes[*].value.statuses[*].id') AS ids
  FROM unnest(ARRAY['read', 'sent_with_pricing', 'failed_131049'], ARRAY[:'read', :'sent_with_pricing', :'failed_131049']::jsonb[]) AS fixture(f, body)
 ORDER BY f;
INSERT INTO campaign_recipients (campaign_id, phone_number, whatsapp_message_id)
SELECT '00000000-0000-0000-0000-00000000000e', '+1650555' || id, id
  FROM (SELECT DISTINCT jsonb_path_query(body, '$.entry[*].changes[*].value.statuses[*].id') #>> '{}' AS id
          FROM unnest(ARRAY[:'read', :'sent_with_pricing', :'failed_131049']::jsonb[]) AS body) ids
 WHERE id NOT IN (SELECT whatsapp_message_id FROM campaign_recipients WHERE whatsapp_message_id IS NOT NULL);
SELECT * FROM campaign_counters.apply_whatsapp_webhook(:'sent_with_pricing'::jsonb);
SELECT * FROM campaign_counters.apply_whatsapp_webhook(:'read'::jsonb);
SELECT * FROM campaign_counters.apply_whatsapp_webhook(:'failed_131049'::jsonb);
SELECT whatsapp_message_id, code, title, details FROM campaign_counters.recipient_failures ORDER BY 1, 2;
SELECT * FROM campaign_counters.failure_reasons('00000000-0000-0000-0000-00000000000e');

-- A failed status without errors[] is reported as "no details".
SELECT * FROM campaign_counters.apply_whatsapp_webhook(webhook(jsonb_build_array(
    jsonb_build_object('id', 'wamid.A4', 'status', 'failed', 'timestamp', '1750030500'))));
SELECT * FROM campaign_counters.failure_reasons('00000000-0000-0000-0000-00000000000e');

-- Items that are not status events for us: ignored or invalid, never blocking the others.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(webhook(jsonb_build_array(
    jsonb_build_object('id', 'wamid.A2', 'status', 'deleted', 'timestamp', '1750030600'),
    jsonb_build_object('status', 'read', 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A2', 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A2', 'status', 'read'),
    jsonb_build_object('id', 'wamid.A2', 'status', 'read', 'timestamp', '-5'),
    jsonb_build_object('id', 'wamid.A2', 'status', 'read', 'timestamp', '99999999999999999999'),
    jsonb_build_object('id', 'wamid.A2', 'status', 'read', 'timestamp', 1750030600),
    jsonb_build_object('id', 'wamid.A2', 'status', 'read', 'timestamp', '1750030600'))));
-- Statuses under field "calls" are call statuses, not message statuses.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(jsonb_set(webhook(jsonb_build_array(
    jsonb_build_object('id', 'wamid.A2', 'status', 'failed', 'timestamp', '1750030700'))), '{entry,0,changes,0,field}', '"calls"'));
SELECT whatsapp_message_id, status, read_at FROM campaign_recipients WHERE whatsapp_message_id = 'wamid.A2';
SELECT * FROM campaign_counters.verify_campaign_counters();

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
