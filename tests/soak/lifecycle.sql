-- A short campaign only this client touches: created with 20 recipients, a webhook of their
-- deliveries and reads, its counters verified on their own (nothing else writes them, so they
-- must be exact here), then deleted with ON DELETE CASCADE.
\set t random(1, 2000000000)
/* soak:lifecycle */ INSERT INTO marketing_campaigns (name) VALUES ('tmp-' || :client_id || '-' || :t);
/* soak:lifecycle */ INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id, sent_at)
SELECT (SELECT id FROM marketing_campaigns WHERE name = 'tmp-' || :client_id || '-' || :t),
       'tmp-' || :client_id || '-' || :t || '-' || g, 'sent',
       'wamid.T' || :client_id || '-' || :t || '-' || g, now()
  FROM generate_series(1, 20) AS g;
/* soak:lifecycle */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'lifecycle', w.outcome
  FROM campaign_counters.apply_whatsapp_webhook((
    SELECT jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
               jsonb_build_object('id', '1', 'changes', jsonb_build_array(jsonb_build_object(
                   'field', 'messages', 'value', jsonb_build_object('statuses', jsonb_agg(
                       jsonb_build_object('id', 'wamid.T' || :client_id || '-' || :t || '-' || g,
                                          'status', (ARRAY['delivered', 'read', 'failed'])[1 + g % 3],
                                          'timestamp', (1750000000 + g)::text))))))))
      FROM generate_series(1, 20) AS g)) AS w;
/* soak:lifecycle */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'lifecycle-drift', count(*)::text
  FROM campaign_counters.verify_campaign_counters(
           (SELECT id::text FROM marketing_campaigns WHERE name = 'tmp-' || :client_id || '-' || :t));
/* soak:lifecycle */ DELETE FROM marketing_campaigns WHERE name = 'tmp-' || :client_id || '-' || :t;
