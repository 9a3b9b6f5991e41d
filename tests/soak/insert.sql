-- The app adds recipients for 4 slots (those that have none) to a campaign, half of the time
-- already sent with their message id (which applies events parked for it).
\set n random(1, :slots)
\set c random(1, :hot + :cold)
\set w random(0, 1)
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
SELECT (SELECT id FROM soak_campaigns WHERE i = :c), 'p' || n,
       CASE WHEN :w = 1 THEN 'sent' ELSE 'pending' END,
       CASE WHEN :w = 1 THEN 'wamid.S' || n END,
       CASE WHEN :w = 1 THEN now() END
  FROM (SELECT 1 + (:n + g * 9973) % :slots AS n FROM generate_series(0, 3) AS g) AS s
 ORDER BY ('p' || n) COLLATE "C"
    ON CONFLICT DO NOTHING;
