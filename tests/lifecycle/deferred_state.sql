-- The deferred pair of deferred.sql: its mode, its pending changes, stored plus pending, and the
-- campaigns whose stored plus pending (current) or stored counters differ from a recount.
\pset footer off
SELECT recipients, mode FROM campaign_counters.attachments ORDER BY recipients::text COLLATE "C";
SELECT campaign_id, count(*) AS rows, sum(messages_pending) AS pending, sum(messages_sent) AS sent,
       sum(messages_delivered) AS delivered, sum(messages_read) AS read, sum(messages_failed) AS failed
  FROM campaign_counters.pending_changes WHERE campaigns = '"Other Shop".campaigns'::regclass
 GROUP BY campaign_id ORDER BY campaign_id;
SELECT * FROM campaign_counters.current_counters(campaigns => '"Other Shop".campaigns') ORDER BY campaign_id::bigint;
CREATE TEMP VIEW recount AS
SELECT c.id::text AS campaign_id,
       count(r.*) FILTER (WHERE r.status = 'pending') AS messages_pending,
       count(r.*) FILTER (WHERE r.status IN ('sent', 'delivered', 'read')) AS messages_sent,
       count(r.*) FILTER (WHERE r.status IN ('delivered', 'read')) AS messages_delivered,
       count(r.*) FILTER (WHERE r.status = 'read') AS messages_read,
       count(r.*) FILTER (WHERE r.status = 'failed') AS messages_failed
  FROM "Other Shop".campaigns c LEFT JOIN "Other Shop"."Recipients" r ON r.campaign_id = c.id
 GROUP BY c.id;
SELECT 'current' AS off_by_recount, campaign_id FROM (
    SELECT * FROM campaign_counters.current_counters(campaigns => '"Other Shop".campaigns') EXCEPT SELECT * FROM recount) current_off
UNION ALL
SELECT 'stored', campaign_id FROM (
    SELECT id::text AS campaign_id, messages_pending, messages_sent, messages_delivered, messages_read, messages_failed
      FROM "Other Shop".campaigns EXCEPT SELECT * FROM recount) stored_off
ORDER BY 1, 2;
