-- The app moves one recipient to another campaign (hot or cold).
\set n random(1, :slots)
\set c random(1, :hot + :cold)
/* soak:move */ UPDATE campaign_recipients
   SET campaign_id = (SELECT id FROM soak_campaigns WHERE i = :c)
 WHERE phone_number = 'p' || :n;
