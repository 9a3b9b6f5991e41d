-- The app deletes one recipient.
\set n random(1, :slots)
/* soak:delete */ DELETE FROM campaign_recipients WHERE phone_number = 'p' || :n;
