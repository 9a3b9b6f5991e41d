-- The demo's stream: a campaign of 10,000 recipients and a smaller one, sent in bulk, then
-- Meta's status webhooks as they really arrive: batched up to 1000, duplicated, out of order,
-- some before the application stored the message id. Deterministic (fixed random seed).
\set QUIET on
\pset footer off
SET client_min_messages = warning;
SELECT setseed(0.42);
SELECT campaign_counters.attach();

INSERT INTO marketing_campaigns (id, name, total_target_customers) VALUES
    ('b1ac0000-0000-0000-0000-000000000001', 'Black Friday', 10000),
    ('5e5e0000-0000-0000-0000-000000000002', 'Restock alert', 2000);

-- 1. The application queues its recipients in two bulk INSERTs.
INSERT INTO campaign_recipients (campaign_id, phone_number)
SELECT 'b1ac0000-0000-0000-0000-000000000001', '+1555' || lpad(i::text, 7, '0') FROM generate_series(1, 10000) i;
INSERT INTO campaign_recipients (campaign_id, phone_number)
SELECT '5e5e0000-0000-0000-0000-000000000002', '+1444' || lpad(i::text, 7, '0') FROM generate_series(1, 2000) i;

-- 2. It sends: every message gets its id, but for 300 recipients the id is stored only after
--    their first statuses arrived (the send call's response was slow).
CREATE TEMP TABLE sends AS
SELECT id, campaign_id, 'wamid.' || md5(id::text) AS message_id, random() < 0.025 AS slow_response,
       timestamptz '2026-11-27 09:00+00' + (row_number() OVER (ORDER BY phone_number)) * interval '20 ms' AS sent_at
  FROM campaign_recipients;
UPDATE campaign_recipients r SET status = 'sent', whatsapp_message_id = s.message_id, sent_at = s.sent_at
  FROM sends s WHERE s.id = r.id AND NOT s.slow_response;

-- 3. What Meta will report per message: 3% fail, the rest deliver, 60% are read.
CREATE TEMP TABLE fate AS
SELECT message_id, sent_at, random() AS dice,
       (ARRAY[131049, 131026, 131050])[1 + floor(random() * 3)::int] AS error_code
  FROM sends;
CREATE TEMP TABLE events AS
SELECT message_id, 'delivered' AS status, sent_at + interval '3 s' + random() * interval '60 s' AS at, NULL::int AS error_code
  FROM fate WHERE dice >= 0.03
UNION ALL
SELECT message_id, 'read', sent_at + interval '2 min' + random() * interval '3 h', NULL FROM fate WHERE dice >= 0.40
UNION ALL
SELECT message_id, 'failed', sent_at + interval '2 s', error_code FROM fate WHERE dice < 0.03;
-- Meta delivers at least once: 15% of statuses come twice.
INSERT INTO events SELECT * FROM events WHERE random() < 0.15;

-- 4. The webhook stream: statuses in shuffled order (so read often arrives before delivered),
--    posted in bodies of up to 1000 statuses, exactly in Meta's shape.
CREATE TEMP TABLE stream AS
SELECT row_number() OVER (ORDER BY random()) AS n, * FROM events;
CREATE TEMP TABLE outcomes (outcome text, statuses bigint);
-- scripts/demo --http: the bodies are kept for the webhook receiver instead of applied here.
\getenv receiver_url CC_DEMO_RECEIVER_URL
SELECT :{?receiver_url} AS via_http \gset
SELECT set_config('demo.via_http', :'via_http', false) \g /dev/null
\if :via_http
CREATE TABLE demo_webhook_bodies (batch int PRIMARY KEY, body jsonb NOT NULL);
\endif
DO $$
DECLARE
    batch int;
    body jsonb;
BEGIN
    FOR batch IN SELECT DISTINCT (n - 1) / 1000 FROM stream ORDER BY 1 LOOP
        SELECT jsonb_build_object(
                 'object', 'whatsapp_business_account',
                 'entry', jsonb_build_array(jsonb_build_object(
                   'id', '102290129340398',
                   'changes', jsonb_build_array(jsonb_build_object(
                     'field', 'messages',
                     'value', jsonb_build_object(
                       'messaging_product', 'whatsapp',
                       'metadata', jsonb_build_object('display_phone_number', '15550783881', 'phone_number_id', '106540352242922'),
                       'statuses', jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
                           'id', message_id, 'status', status,
                           'timestamp', extract(epoch FROM at)::bigint::text,
                           'recipient_id', '16505550000',
                           'errors', CASE WHEN error_code IS NOT NULL THEN jsonb_build_array(jsonb_build_object(
                               'code', error_code,
                               'title', CASE error_code WHEN 131049 THEN 'This message was not delivered to maintain healthy ecosystem engagement.'
                                                       WHEN 131026 THEN 'Message undeliverable'
                                                       ELSE 'User opted out of marketing messages' END,
                               'error_data', jsonb_build_object('details', 'Reported by Meta for the demo.'))) END))
                           ORDER BY n)))))))
          INTO body FROM stream WHERE (n - 1) / 1000 = batch;
        IF current_setting('demo.via_http')::boolean THEN
            INSERT INTO demo_webhook_bodies VALUES (batch, body);
            CONTINUE;
        END IF;
        INSERT INTO outcomes SELECT outcome, count(*) FROM campaign_counters.apply_whatsapp_webhook(body) GROUP BY 1;
        -- Halfway through, the slow send responses finally store their ids: parked statuses apply.
        IF batch = 5 THEN
            UPDATE campaign_recipients r SET status = 'sent', whatsapp_message_id = s.message_id, sent_at = s.sent_at
              FROM sends s WHERE s.id = r.id AND s.slow_response;
        END IF;
    END LOOP;
END
$$;
\if :via_http
\echo 'demo: posting the stream as signed HTTP requests to' :receiver_url/webhook
\! "$CC_DEMO_PYTHON" "$CC_DEMO_SENDER" --url "$CC_DEMO_RECEIVER_URL/webhook" --batches 0-5
UPDATE campaign_recipients r SET status = 'sent', whatsapp_message_id = s.message_id, sent_at = s.sent_at
  FROM sends s WHERE s.id = r.id AND s.slow_response;
\! "$CC_DEMO_PYTHON" "$CC_DEMO_SENDER" --url "$CC_DEMO_RECEIVER_URL/webhook" --batches 6-
\endif

-- 5. Single updates, a recipient moved to another campaign, opt-outs deleted.
CREATE TEMP TABLE single_updates AS
SELECT campaign_counters.apply_recipient_status(message_id, 'read', sent_at + interval '1 day') AS outcome
  FROM fate WHERE dice BETWEEN 0.30 AND 0.305;
UPDATE campaign_recipients SET campaign_id = '5e5e0000-0000-0000-0000-000000000002'
 WHERE whatsapp_message_id = (SELECT min(whatsapp_message_id) FROM campaign_recipients WHERE campaign_id = 'b1ac0000-0000-0000-0000-000000000001');
DELETE FROM campaign_recipients WHERE phone_number IN (SELECT phone_number FROM campaign_recipients ORDER BY md5(phone_number) LIMIT 25);

\echo
\if :via_http
\echo 'Webhook statuses by outcome: posted over HTTP, so the receiver logged them, one line per body'
\else
\echo 'Webhook statuses by outcome'
SELECT outcome, sum(statuses) AS statuses FROM outcomes GROUP BY 1 ORDER BY 2 DESC;
\endif

\echo 'Single apply_recipient_status() calls by outcome'
SELECT outcome, count(*) AS statuses FROM single_updates GROUP BY 1 ORDER BY 2 DESC;

\echo 'Campaign counters, kept by the trigger (delivery rate: delivered of sent + failed; read rate: read of delivered)'
SELECT name AS campaign, messages_pending + messages_sent + messages_failed AS recipients,
       messages_pending AS pending, messages_sent AS sent, messages_delivered AS delivered,
       messages_read AS read, messages_failed AS failed,
       to_char(100.0 * messages_delivered / nullif(messages_sent + messages_failed, 0), 'FM990.0') || ' %' AS delivery_rate,
       to_char(100.0 * messages_read / nullif(messages_delivered, 0), 'FM990.0') || ' %' AS read_rate
  FROM marketing_campaigns ORDER BY name;

\echo 'Why messages failed (Black Friday)'
SELECT * FROM campaign_counters.failure_reasons('b1ac0000-0000-0000-0000-000000000001');

\echo 'Drift check: verify_campaign_counters() (no rows = the counters match a recount)'
SELECT * FROM campaign_counters.verify_campaign_counters();
SELECT CASE WHEN count(*) = 0 THEN 'OK: every counter matches a recount of campaign_recipients'
            ELSE 'DRIFT: ' || count(*) || ' counters differ' END AS result
  FROM campaign_counters.verify_campaign_counters();
\echo 'Parked statuses left (ids no recipient has):'
SELECT count(*) AS parked FROM campaign_counters.parked_events;
