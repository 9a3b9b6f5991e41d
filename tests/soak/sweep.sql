-- The scheduled sweep for events parked while their recipient's id was still uncommitted
-- (campaign_counters.apply_parked_events(), from 0.2.0), racing the writers.
/* soak:sweep */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'sweep', campaign_counters.apply_parked_events()::text;
