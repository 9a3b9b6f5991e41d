-- The same event delivered twice in a row (a retried webhook), then an older one (stale).
\set n random(1, :slots)
\set k random(1, 4)
/* soak:retry */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'retry', campaign_counters.apply_recipient_status(
           'wamid.S' || :n, (ARRAY['sent', 'delivered', 'read', 'played', 'failed'])[:k + 1],
           to_timestamp(1750000000 + :n * 60 + :k * 10));
/* soak:retry */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'retry', campaign_counters.apply_recipient_status(
           'wamid.S' || :n, (ARRAY['sent', 'delivered', 'read', 'played', 'failed'])[:k + 1],
           to_timestamp(1750000000 + :n * 60 + :k * 10));
/* soak:retry */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'retry', campaign_counters.apply_recipient_status(
           'wamid.S' || :n, 'sent', to_timestamp(1750000000 + :n * 60 + 1));
