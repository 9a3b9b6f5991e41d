-- After recovery, both directions of "the rows hold exactly the committed events":
-- 1. Nothing committed is missing. Every event whose commit a client saw acknowledged (client
--    logs, loaded into acked, read from standard input) and every event logged in a committed
--    transaction (crash_events) must be reflected: a recipient with the id has at least the
--    event's rank and each timestamp the event implies at or before its time; an id no
--    recipient has must have the event parked (figures missing_acked, missing_logged).
-- 2. Nothing more than committed is there (figure excess). A recipient row's status ranks at
--    most as high as the highest of its initial status and its logged events, and each
--    timestamp equals the earlier of its initial value and the earliest logged event that
--    implies it (NULL when neither has one). The initial state is known for every row with a
--    message id: crash_initial holds the rows as scripts/crash-test left them before the
--    webhook load (setup.sql's pending rows, after the bulk update that set them sent
--    and the killed one that must have rolled back), and the rows (c) inserts later start
--    pending with no timestamps (not in crash_initial).
-- Prints "<check> <count>" lines; every count must be 0 except the totals.
\set ON_ERROR_STOP 1
CREATE TEMP TABLE acked (client int, seq int, whatsapp_message_id text, status text, unix_ts bigint);
\copy acked FROM pstdin
CREATE TEMP VIEW expected AS
SELECT 'acked' AS source, whatsapp_message_id, status, to_timestamp(unix_ts) AS occurred_at FROM acked
UNION ALL
SELECT 'logged', whatsapp_message_id, status, occurred_at FROM crash_events;
CREATE TEMP TABLE missing AS
SELECT e.source, e.whatsapp_message_id, e.status AS event, e.occurred_at,
       r.status, r.sent_at, r.delivered_at, r.read_at, r.failed_at
  FROM expected AS e
  LEFT JOIN campaign_recipients AS r ON r.whatsapp_message_id = e.whatsapp_message_id
 WHERE CASE
         WHEN r.id IS NULL THEN NOT EXISTS (
              SELECT FROM campaign_counters.parked_events AS p
               WHERE p.whatsapp_message_id = e.whatsapp_message_id AND p.status = e.status
                 AND p.occurred_at = e.occurred_at)
         ELSE array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'], r.status)
                < array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'],
                                 CASE e.status WHEN 'played' THEN 'read' ELSE e.status END)
           OR (e.status IN ('sent', 'delivered', 'read', 'played') AND NOT coalesce(r.sent_at <= e.occurred_at, false))
           OR (e.status IN ('delivered', 'read', 'played') AND NOT coalesce(r.delivered_at <= e.occurred_at, false))
           OR (e.status IN ('read', 'played') AND NOT coalesce(r.read_at <= e.occurred_at, false))
           OR (e.status = 'failed' AND NOT coalesce(r.failed_at <= e.occurred_at, false))
       END;
CREATE TEMP TABLE implied AS
SELECT whatsapp_message_id,
       max(array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'],
                          CASE status WHEN 'played' THEN 'read' ELSE status END)) AS rank,
       min(occurred_at) FILTER (WHERE status IN ('sent', 'delivered', 'read', 'played')) AS sent_at,
       min(occurred_at) FILTER (WHERE status IN ('delivered', 'read', 'played')) AS delivered_at,
       min(occurred_at) FILTER (WHERE status IN ('read', 'played')) AS read_at,
       min(occurred_at) FILTER (WHERE status = 'failed') AS failed_at
  FROM crash_events GROUP BY whatsapp_message_id;
-- greatest() and least() ignore NULLs: a row without events must equal its initial state.
CREATE TEMP TABLE excess AS
SELECT r.whatsapp_message_id, r.status, r.sent_at, r.delivered_at, r.read_at, r.failed_at,
       (ARRAY['pending', 'sent', 'failed', 'delivered', 'read'])[greatest(
           array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'], coalesce(i.status, 'pending')),
           e.rank)] AS max_status,
       least(i.sent_at, e.sent_at) AS want_sent_at, least(i.delivered_at, e.delivered_at) AS want_delivered_at,
       least(i.read_at, e.read_at) AS want_read_at, least(i.failed_at, e.failed_at) AS want_failed_at
  FROM campaign_recipients AS r
  LEFT JOIN crash_initial AS i ON i.whatsapp_message_id = r.whatsapp_message_id
  LEFT JOIN implied AS e ON e.whatsapp_message_id = r.whatsapp_message_id
 WHERE r.whatsapp_message_id IS NOT NULL;
DELETE FROM excess
 WHERE array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'], status)
         <= array_position(ARRAY['pending', 'sent', 'failed', 'delivered', 'read'], max_status)
   AND sent_at IS NOT DISTINCT FROM want_sent_at AND delivered_at IS NOT DISTINCT FROM want_delivered_at
   AND read_at IS NOT DISTINCT FROM want_read_at AND failed_at IS NOT DISTINCT FROM want_failed_at;
SELECT 'total_acked ' || count(*) FROM acked;
SELECT 'total_logged ' || count(*) FROM crash_events;
-- Acknowledged but not in crash_events: the commit was acknowledged and then lost.
SELECT 'acked_not_logged ' || count(*) FROM acked AS a
 WHERE NOT EXISTS (SELECT FROM crash_events AS c WHERE (c.client, c.seq) = (a.client, a.seq));
SELECT 'missing_acked ' || count(*) FROM missing WHERE source = 'acked';
SELECT 'missing_logged ' || count(*) FROM missing WHERE source = 'logged';
SELECT 'drift ' || count(*) FROM campaign_counters.verify_campaign_counters();
SELECT 'excess ' || count(*) FROM excess;
SELECT 'example ' || source || ' ' || whatsapp_message_id || ' ' || event || ' at ' || occurred_at
       || ' row: ' || coalesce(status, 'none') || ' sent ' || coalesce(sent_at::text, '-')
       || ' delivered ' || coalesce(delivered_at::text, '-') || ' read ' || coalesce(read_at::text, '-')
       || ' failed ' || coalesce(failed_at::text, '-')
  FROM missing LIMIT 5;
SELECT 'example excess ' || whatsapp_message_id || ' row: ' || status || ' sent ' || coalesce(sent_at::text, '-')
       || ' delivered ' || coalesce(delivered_at::text, '-') || ' read ' || coalesce(read_at::text, '-')
       || ' failed ' || coalesce(failed_at::text, '-') || '; at most: ' || max_status
       || ' sent ' || coalesce(want_sent_at::text, '-') || ' delivered ' || coalesce(want_delivered_at::text, '-')
       || ' read ' || coalesce(want_read_at::text, '-') || ' failed ' || coalesce(want_failed_at::text, '-')
  FROM excess LIMIT 5;
