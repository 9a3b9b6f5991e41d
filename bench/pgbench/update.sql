-- One webhook-style status change of one recipient, found by its WhatsApp message id, with no
-- counter work of its own: the statement of the `none`, `row`, `statement` and
-- `campaign_counters` variants (their triggers, if any, keep the counters).
-- The status moves one step along pending -> sent -> delivered -> read -> failed -> pending, so
-- every transaction changes its campaign's counters. :lo/:hi pick the recipients (all of them,
-- or the block of one hot campaign).
\set n random(:lo, :hi)
UPDATE campaign_recipients
   SET status = CASE status WHEN 'pending' THEN 'sent' WHEN 'sent' THEN 'delivered'
                            WHEN 'delivered' THEN 'read' WHEN 'read' THEN 'failed' ELSE 'pending' END
 WHERE whatsapp_message_id = 'wamid.HBgL' || md5(CAST(:n AS text));
