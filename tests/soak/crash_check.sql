-- After recovery: every event whose commit a client saw acknowledged (client logs, loaded into
-- acked, read from standard input) and every event logged in a committed transaction (crash_events) must be reflected:
-- a recipient with the id has at least the event's rank and each timestamp the event implies
-- at or before its time; an id no recipient has must have the event parked. Prints
-- "<check> <count>" lines; every count must be 0 except the totals.
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
SELECT 'total_acked ' || count(*) FROM acked;
SELECT 'total_logged ' || count(*) FROM crash_events;
-- Acknowledged but not in crash_events: the commit was acknowledged and then lost.
SELECT 'acked_not_logged ' || count(*) FROM acked AS a
 WHERE NOT EXISTS (SELECT FROM crash_events AS c WHERE (c.client, c.seq) = (a.client, a.seq));
SELECT 'missing_acked ' || count(*) FROM missing WHERE source = 'acked';
SELECT 'missing_logged ' || count(*) FROM missing WHERE source = 'logged';
SELECT 'drift ' || count(*) FROM campaign_counters.verify_campaign_counters();
SELECT 'example ' || source || ' ' || whatsapp_message_id || ' ' || event || ' at ' || occurred_at
       || ' row: ' || coalesce(status, 'none') || ' sent ' || coalesce(sent_at::text, '-')
       || ' delivered ' || coalesce(delivered_at::text, '-') || ' read ' || coalesce(read_at::text, '-')
       || ' failed ' || coalesce(failed_at::text, '-')
  FROM missing LIMIT 5;
