-- One webhook body of 10 statuses for the hot campaign of the copy on the search_path: the next 10
-- of its :hi `sent` recipients (message ids 'wamid.W0'...), taken in turn by every client through
-- the sequence hook_block, get `delivered`; once all have, the next pass makes them `read`. So
-- every status changes its row and the campaign's counters until two passes are done.
SELECT count(*) FROM campaign_counters.apply_whatsapp_webhook((
    SELECT jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(jsonb_build_object(
               'changes', jsonb_build_array(jsonb_build_object('field', 'messages', 'value', jsonb_build_object(
                   'statuses', jsonb_agg(jsonb_build_object(
                       'id', 'wamid.W' || (b.k * 10 + i) % :hi,
                       'status', CASE WHEN (b.k * 10 + i) / :hi = 0 THEN 'delivered' ELSE 'read' END,
                       'timestamp', '1764234000'))))))))
      FROM (SELECT nextval('hook_block') - 1 AS k) AS b, generate_series(0, 9) AS i),
    'campaign_recipients'::regclass);
