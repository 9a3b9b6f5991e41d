-- The app moves up to 20 sent recipients of one cold campaign to another, locking them in
-- message-id order first.
\set c1 random(:hot + 1, :hot + :cold)
\set c2 random(1, :hot + :cold)
/* soak:move_many */ WITH locked AS (
    SELECT id FROM campaign_recipients
     WHERE campaign_id = (SELECT id FROM soak_campaigns WHERE i = :c1)
       AND whatsapp_message_id IS NOT NULL
     ORDER BY whatsapp_message_id COLLATE "C"
     LIMIT 20
       FOR NO KEY UPDATE)
UPDATE campaign_recipients AS r
   SET campaign_id = (SELECT id FROM soak_campaigns WHERE i = :c2)
  FROM locked
 WHERE r.id = locked.id;
