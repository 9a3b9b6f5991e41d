-- Data for the upgrade and dump/restore tests: an attached pair with counters, applied and
-- parked statuses, failure details, pricing (0.3.0 on), and a second attachment with bigint ids.
SET client_min_messages = warning;
SELECT campaign_counters.attach();
INSERT INTO marketing_campaigns (id, name) VALUES
    ('00000000-0000-0000-0000-000000000001', 'one'), ('00000000-0000-0000-0000-000000000002', 'two');
INSERT INTO campaign_recipients (campaign_id, phone_number, status, whatsapp_message_id)
SELECT ('00000000-0000-0000-0000-00000000000' || (1 + i % 2))::uuid, '+1' || i,
       (ARRAY['pending', 'sent', 'sent', 'sent'])[1 + i % 4], CASE WHEN i % 4 > 0 THEN 'wamid.' || i END
  FROM generate_series(1, 400) i;
SELECT count(*) FROM campaign_counters.apply_whatsapp_webhook(jsonb_build_object(
    'object', 'whatsapp_business_account', 'entry', jsonb_build_array(jsonb_build_object('changes', jsonb_build_array(jsonb_build_object(
        'field', 'messages', 'value', jsonb_build_object('statuses', (
            SELECT jsonb_agg(jsonb_build_object('id', 'wamid.' || i, 'status', (ARRAY['delivered', 'read', 'failed'])[1 + i % 3],
                                                'timestamp', (1760000000 + i)::text,
                                                'errors', jsonb_build_array(jsonb_build_object('code', 131049, 'title', 'ecosystem')),
                                                'pricing', (ARRAY[jsonb_build_object('billable', true, 'pricing_model', 'PMP', 'type', 'regular', 'category', 'marketing'),
                                                                  jsonb_build_object('billable', false, 'pricing_model', 'PMP', 'type', 'free_customer_service', 'category', 'service'),
                                                                  jsonb_build_object('billable', true, 'pricing_model', 'CBP', 'category', 'utility')])[1 + i % 3]))
              FROM generate_series(1, 500) i))))))));
SELECT campaign_counters.apply_recipient_status('wamid.early', 'read', '2026-01-01 00:00+00');

CREATE SCHEMA "Other Shop";
CREATE TABLE "Other Shop".campaigns (id bigint PRIMARY KEY, messages_sent bigint DEFAULT 0, messages_delivered bigint DEFAULT 0,
                                     messages_read bigint DEFAULT 0, messages_failed bigint DEFAULT 0, messages_pending bigint DEFAULT 0);
CREATE TABLE "Other Shop"."Recipients" (campaign_id bigint, status text, whatsapp_message_id text,
                                        sent_at timestamp, delivered_at timestamp, read_at timestamp, failed_at timestamp);
SELECT campaign_counters.attach('"Other Shop"."Recipients"', '"Other Shop".campaigns');
INSERT INTO "Other Shop".campaigns (id) SELECT generate_series(1, 5);
INSERT INTO "Other Shop"."Recipients" (campaign_id, status) SELECT 1 + i % 5, 'read' FROM generate_series(1, 50) i;
