-- `floor`: the same status change as update.sql and its campaign's counter change in one
-- statement, with no trigger at all: the cheapest possible immediate counter.
-- The step pending -> sent -> delivered -> read -> failed -> pending is a bijection, so the old
-- status follows exactly from the new one in RETURNING (PostgreSQL 15 has no OLD there), and it
-- is right under concurrency too: the SET is evaluated on the row version actually updated.
\set n random(:lo, :hi)
WITH u AS (
    UPDATE campaign_recipients
       SET status = CASE status WHEN 'pending' THEN 'sent' WHEN 'sent' THEN 'delivered'
                                WHEN 'delivered' THEN 'read' WHEN 'read' THEN 'failed' ELSE 'pending' END
     WHERE whatsapp_message_id = 'wamid.HBgL' || md5(CAST(:n AS text))
 RETURNING campaign_id, status AS new_status,
           CASE status WHEN 'sent' THEN 'pending' WHEN 'delivered' THEN 'sent' WHEN 'read' THEN 'delivered'
                       WHEN 'failed' THEN 'read' ELSE 'failed' END AS old_status
)
UPDATE marketing_campaigns c SET
    messages_pending   = c.messages_pending   + (u.new_status = 'pending')::int - (u.old_status = 'pending')::int,
    messages_sent      = c.messages_sent      + (u.new_status IN ('sent', 'delivered', 'read'))::int
                                              - (u.old_status IN ('sent', 'delivered', 'read'))::int,
    messages_delivered = c.messages_delivered + (u.new_status IN ('delivered', 'read'))::int
                                              - (u.old_status IN ('delivered', 'read'))::int,
    messages_read      = c.messages_read      + (u.new_status = 'read')::int - (u.old_status = 'read')::int,
    messages_failed    = c.messages_failed    + (u.new_status = 'failed')::int - (u.old_status = 'failed')::int
  FROM u
 WHERE c.id = u.campaign_id;
