-- The app adds recipients for 4 slots (those that have none) to a campaign, pending and
-- without a message id yet.
\set n random(1, :slots)
\set c random(1, :hot + :cold)
/* soak:insert */ INSERT INTO campaign_recipients (campaign_id, phone_number)
SELECT (SELECT id FROM soak_campaigns WHERE i = :c), 'p' || n
  FROM (SELECT 1 + (:n + g * 9973) % :slots AS n FROM generate_series(0, 3) AS g) AS s
 ORDER BY ('p' || n) COLLATE "C"
    ON CONFLICT DO NOTHING;
