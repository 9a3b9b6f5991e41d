-- One status event for a random slot, out of order: the status and its jitter are random,
-- the time is fixed per (slot, status, jitter), so repeats are exact duplicates as Meta's
-- retries are. About one slot in three has no recipient or no message id yet: parked.
\set n random(1, :slots)
\set k random(0, 4)
\set j random(0, 1)
/* soak:single */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'single', campaign_counters.apply_recipient_status(
           'wamid.S' || :n,
           (ARRAY['sent', 'delivered', 'read', 'played', 'failed'])[:k + 1],
           to_timestamp(1750000000 + :n * 60 + :k * 10 + :j));
