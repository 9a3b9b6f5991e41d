-- Pricing (0.3.0 on), which must survive a dump and restore: the rows, and what campaign_costs makes of them.
\pset footer off
SELECT recipients, pricing_model, category, pricing_type, billable, count(*), min(whatsapp_message_id), max(priced_at)
  FROM campaign_counters.message_pricing GROUP BY 1, 2, 3, 4, 5 ORDER BY recipients::text COLLATE "C", 2, 3, 4, 5;
SELECT * FROM campaign_counters.campaign_costs('00000000-0000-0000-0000-000000000001', 'marketing_campaigns');
SELECT * FROM campaign_counters.campaign_costs(NULL, 'marketing_campaigns');
