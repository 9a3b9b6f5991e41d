-- The app sent 6 slots' messages: it stores their message ids (rows that had none) and marks
-- pending ones sent, in one statement over several campaigns; parked events for those ids
-- apply now. Rows without an id are locked in id order (status events never lock them).
\set n random(1, :slots)
/* soak:assign */ WITH locked AS (
    SELECT id FROM campaign_recipients
     WHERE phone_number IN (SELECT 'p' || (1 + (:n + g * 4999) % :slots) FROM generate_series(0, 5) AS g)
       AND whatsapp_message_id IS NULL
     ORDER BY id
       FOR NO KEY UPDATE)
UPDATE campaign_recipients AS r
   SET whatsapp_message_id = 'wamid.S' || substr(r.phone_number, 2),
       status = CASE WHEN r.status = 'pending' THEN 'sent' ELSE r.status END,
       sent_at = CASE WHEN r.status = 'pending' THEN coalesce(r.sent_at, now()) ELSE r.sent_at END
  FROM locked
 WHERE r.id = locked.id;
