-- Everything that must survive an upgrade or a dump and restore, in a stable order.
\pset footer off
SELECT extversion IS NOT NULL AS installed FROM pg_extension WHERE extname = 'campaign_counters';
SELECT recipients, campaigns FROM campaign_counters.attachments ORDER BY recipients::text COLLATE "C";
-- The recipients' counter triggers (the campaigns tables get theirs from the 0.3.0 upgrade).
SELECT tgrelid::regclass, tgname FROM pg_trigger WHERE tgfoid = 'campaign_counters.count_recipients()'::regprocedure ORDER BY tgrelid::regclass::text COLLATE "C", 2;
SELECT recipients, whatsapp_message_id, status, occurred_at FROM campaign_counters.parked_events ORDER BY 2, 3;
SELECT recipients, count(*), min(whatsapp_message_id), max(failed_at) FROM campaign_counters.recipient_failures GROUP BY 1 ORDER BY recipients::text COLLATE "C";
SELECT name, messages_pending, messages_sent, messages_delivered, messages_read, messages_failed FROM marketing_campaigns ORDER BY name;
SELECT * FROM "Other Shop".campaigns ORDER BY id;
SELECT status, count(*), min(sent_at), max(read_at) FROM campaign_recipients GROUP BY 1 ORDER BY 1;
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => 'marketing_campaigns');
SELECT * FROM campaign_counters.verify_campaign_counters(campaigns => '"Other Shop".campaigns');
