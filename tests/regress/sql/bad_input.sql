-- A catalogue of bad input: each case shows its SQLSTATE and message; none crashes the backend
-- or leaves a partial write (expect_error runs each in a subtransaction that rolls back).
\getenv abs_srcdir PG_ABS_SRCDIR
\set helper :abs_srcdir '/helpers/begin.sql'
\i :helper
-- Fixture: campaign beta, and the recipients of campaign epsilon used here as webhook.sql leaves
-- them (wamid.A4 failed at 1750030500, without error details), attached.
INSERT INTO marketing_campaigns (id, name) VALUES
    ('00000000-0000-0000-0000-00000000000b', 'beta'), ('00000000-0000-0000-0000-00000000000e', 'epsilon');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, failed_at) VALUES
    ('00000000-0000-0000-0000-00000000000e', '+16505550001', 'read', 'wamid.A1', NULL),
    ('00000000-0000-0000-0000-00000000000e', '+16505550003', 'read', 'wamid.A3', NULL),
    ('00000000-0000-0000-0000-00000000000e', '+16505550004', 'failed', 'wamid.A4', to_timestamp(1750030500));
DO $$ BEGIN PERFORM campaign_counters.attach(); END $$;
CREATE TEMP TABLE snapshot AS
SELECT (SELECT string_agg(concat_ws(',', messages_pending, messages_sent, messages_delivered, messages_read, messages_failed), ';' ORDER BY id)
          FROM marketing_campaigns) AS counters,
       (SELECT count(*) FROM campaign_counters.parked_events) AS parked;

-- Statuses written by the application.
SELECT expect_error($$INSERT INTO campaign_recipients (campaign_id, phone_number, status) VALUES ('00000000-0000-0000-0000-00000000000b', '+1', 'queued')$$);
SELECT expect_error($$UPDATE campaign_recipients SET status = 'Read' WHERE whatsapp_message_id = 'wamid.A1'$$);
SELECT expect_error($$UPDATE campaign_recipients SET status = NULL WHERE whatsapp_message_id = 'wamid.A1'$$);
SELECT expect_error($$INSERT INTO campaign_recipients (campaign_id, phone_number, status) SELECT '00000000-0000-0000-0000-00000000000b', '+1', s FROM unnest(ARRAY['sent', 'sent ', 'read']) s$$);

-- Status events.
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.A1', 'pending')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.A1', '')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('', 'read')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status(repeat('w', 1000000), 'read')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.A1', 'read', '-infinity')$$);
SELECT expect_error($$SELECT campaign_counters.apply_recipient_status('wamid.A1', 'read', now(), 'pg_class')$$);

-- Webhook bodies that are not WhatsApp status webhooks: 22023 for the whole body.
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook(NULL)$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('[]')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('"whatsapp_business_account"')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('42')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('null')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('{}')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "page", "entry": []}')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": {}}')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": 7}]}]}')$$);
SELECT expect_error($$SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": [{"changes": [{"field": "messages", "value": {"statuses": {}}}]}]}')$$);
-- An item nested past the parser's limit is that item's verdict; the body is not rejected.
SELECT whatsapp_message_id, outcome FROM campaign_counters.apply_whatsapp_webhook(webhook(jsonb_build_array(jsonb_build_object('id', 'wamid.A1', 'status', 'read', 'timestamp', '1', 'nested', (repeat('[', 500) || repeat(']', 500))::jsonb))));
-- An empty batch is fine.
SELECT * FROM campaign_counters.apply_whatsapp_webhook('{"object": "whatsapp_business_account", "entry": []}');

-- Bad items are reported one by one and never block the good ones.
SELECT * FROM campaign_counters.apply_whatsapp_webhook(webhook(jsonb_build_array(
    jsonb_build_object('id', 123, 'status', 'read', 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A3', 'status', 7, 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A3', 'status', 'read', 'timestamp', 'yesterday'),
    jsonb_build_object('id', 'wamid.A3', 'status', 'read', 'timestamp', '1e9'),
    jsonb_build_object('id', 'wamid.A3', 'status', 'read', 'timestamp', '253402300800'),
    jsonb_build_object('id', 'wamid.A3', 'status', 'read', 'timestamp', ''),
    jsonb_build_object('id', '', 'status', 'read', 'timestamp', '1750030600'),
    '"just a string"'::jsonb,
    jsonb_build_object('id', 'wamid.A3', 'status', 'READ', 'timestamp', '1750030600'))));
-- 1 MB strings: an id that long is invalid, a 1 MB error title is stored as is.
SELECT length(whatsapp_message_id) AS id_length, length(status) AS status_length, outcome FROM campaign_counters.apply_whatsapp_webhook(webhook(jsonb_build_array(
    jsonb_build_object('id', repeat('w', 1048576), 'status', 'read', 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A4', 'status', repeat('s', 1048576), 'timestamp', '1750030600'),
    jsonb_build_object('id', 'wamid.A4', 'status', 'failed', 'timestamp', '1750030700',
                       'errors', jsonb_build_array(jsonb_build_object('code', 131026, 'title', repeat('t', 1048576)))))));
SELECT code, length(title) FROM campaign_counters.recipient_failures WHERE whatsapp_message_id = 'wamid.A4' ORDER BY 1;

-- 10,000 statuses in one body: one pass, one outcome each.
SELECT outcome, count(*) FROM campaign_counters.apply_whatsapp_webhook(webhook((
    SELECT jsonb_agg(jsonb_build_object('id', 'wamid.bulk' || (i % 2500), 'status', (ARRAY['sent', 'delivered', 'read', 'failed'])[1 + i % 4],
                                        'timestamp', (1750030000 + i)::text))
      FROM generate_series(1, 10000) i)))
 GROUP BY 1 ORDER BY 1;
SELECT count(*) AS parked_ids FROM (SELECT DISTINCT whatsapp_message_id FROM campaign_counters.parked_events WHERE whatsapp_message_id LIKE 'wamid.bulk%') p;
DELETE FROM campaign_counters.parked_events WHERE whatsapp_message_id LIKE 'wamid.bulk%';

-- Nothing above changed a counter or left a parked event behind.
SELECT counters = (SELECT string_agg(concat_ws(',', messages_pending, messages_sent, messages_delivered, messages_read, messages_failed), ';' ORDER BY id)
                     FROM marketing_campaigns) AS counters_unchanged,
       parked = (SELECT count(*) FROM campaign_counters.parked_events) AS parked_unchanged
  FROM snapshot;
SELECT * FROM campaign_counters.verify_campaign_counters();

\set helper :abs_srcdir '/helpers/end.sql'
\i :helper
