-- The app's own bulk status update of one campaign (a slice of ~500 recipients for a hot one):
-- resend failed (failed -> pending: status moves down), mark sent, expire (-> failed), or a
-- no-op rewrite. Like the extension it locks the rows first in message-id order ("C"
-- collation), so it cannot deadlock with status events or other bulk updates.
\set c random(1, :hot + :cold)
\set op random(0, 3)
\set lo random(1, :slots)
/* soak:bulk */ WITH locked AS (
    SELECT r.id FROM campaign_recipients AS r
     WHERE r.campaign_id = (SELECT id FROM soak_campaigns WHERE i = :c)
       AND r.whatsapp_message_id IS NOT NULL
       AND (:c > :hot OR substr(r.phone_number, 2)::int BETWEEN :lo AND :lo + 2000)
       AND CASE :op WHEN 0 THEN r.status = 'failed'
                    WHEN 1 THEN r.status = 'pending'
                    WHEN 2 THEN r.status IN ('pending', 'sent')
                    ELSE true END
     ORDER BY r.whatsapp_message_id COLLATE "C"
       FOR NO KEY UPDATE)
UPDATE campaign_recipients AS r
   SET status = CASE :op WHEN 0 THEN CASE WHEN r.status = 'failed' THEN 'pending' ELSE r.status END
                         WHEN 1 THEN CASE WHEN r.status = 'pending' THEN 'sent' ELSE r.status END
                         WHEN 2 THEN CASE WHEN r.status IN ('pending', 'sent') THEN 'failed' ELSE r.status END
                         ELSE r.status END,
       failed_at = CASE :op WHEN 0 THEN NULL
                            WHEN 2 THEN coalesce(r.failed_at, now())
                            ELSE r.failed_at END,
       sent_at = CASE :op WHEN 1 THEN coalesce(r.sent_at, now()) ELSE r.sent_at END
  FROM locked
 WHERE r.id = locked.id;
