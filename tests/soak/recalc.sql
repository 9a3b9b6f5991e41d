-- recalc of one campaign racing the writers: it must find nothing to repair (returns 0).
\set c random(1, :hot + :cold)
/* soak:recalc */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'recalc', campaign_counters.recalc_campaign_counters(id::text)::text
  FROM soak_campaigns WHERE i = :c;
