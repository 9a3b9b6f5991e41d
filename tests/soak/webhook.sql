-- A Meta webhook body built in SQL: 20 statuses of random slots (batch :b of a pool, so whole
-- bodies are redelivered), 3 of them twice, 0-4 fresh statuses (this second) of messages sent
-- outside campaigns ('wamid.X<m>', m <= :foreign, never a recipient: parked, and concurrent
-- bodies carry the same ones; :foreign = 0 leaves them out) and sometimes an untracked status,
-- shuffled and split over two entries. Failed statuses carry Meta's errors[].
\set b random(1, :wpool)
\set nf random(0, 4)
\set ig random(0, 3)
/* soak:webhook */ INSERT INTO soak_outcomes (kind, outcome)
SELECT 'webhook', w.outcome
  FROM campaign_counters.apply_whatsapp_webhook((
    WITH picked AS (
        SELECT s, 1 + abs(hashint8(:b * 1000 + s)::bigint) % :slots AS n,
               abs(hashint8(:b * 1000 + s + 500)::bigint) % 5 AS k,
               abs(hashint8(:b * 1000 + s + 700)::bigint) % 2 AS j
          FROM generate_series(1, 20) AS s),
    items AS (
        SELECT 'wamid.S' || n AS id, k, 1750000000 + n * 60 + k * 10 + j AS ts, n FROM picked
        UNION ALL
        SELECT 'wamid.S' || n, k, 1750000000 + n * 60 + k * 10 + j, n FROM picked WHERE s <= 3
        UNION ALL
        SELECT 'wamid.X' || m, k, floor(extract(epoch FROM statement_timestamp()))::bigint, m
          FROM (SELECT 1 + (:b + f * 5) % greatest(:foreign, 1) AS m, CASE WHEN f % 2 = 0 THEN 4 ELSE 1 END AS k
                  FROM generate_series(1, CASE WHEN :foreign > 0 THEN :nf ELSE 0 END) AS f) AS x
        UNION ALL
        SELECT 'wamid.S' || (1 + :b % :slots), 5, 1750000000, 0 WHERE :ig = 0),
    statuses AS (
        SELECT row_number() OVER (ORDER BY random()) AS pos,
               jsonb_build_object(
                   'id', id,
                   'status', (ARRAY['sent', 'delivered', 'read', 'played', 'failed', 'deleted'])[k + 1],
                   'timestamp', ts::text,
                   'recipient_id', '1555' || lpad(n::text, 7, '0'))
               || CASE WHEN k = 4 THEN jsonb_build_object('errors', jsonb_build_array(jsonb_build_object(
                      'code', CASE WHEN n % 2 = 0 THEN 131049 ELSE 131026 END,
                      'title', CASE WHEN n % 2 = 0 THEN 'This message was not delivered to maintain healthy ecosystem engagement.'
                                    ELSE 'Message undeliverable' END,
                      'message', 'soak failure',
                      'error_data', jsonb_build_object('details', 'soak failure of ' || id))))
                  ELSE '{}'::jsonb END AS item
          FROM items)
    SELECT jsonb_build_object(
               'object', 'whatsapp_business_account',
               'entry', jsonb_agg(jsonb_build_object(
                   'id', '102290129340398',
                   'changes', jsonb_build_array(jsonb_build_object(
                       'field', 'messages',
                       'value', jsonb_build_object(
                           'messaging_product', 'whatsapp',
                           'metadata', jsonb_build_object('display_phone_number', '15550783881',
                                                          'phone_number_id', '106540352242922'),
                           'statuses', statuses))))))
      FROM (SELECT pos % 2 AS part, jsonb_agg(item ORDER BY pos) AS statuses
              FROM statuses GROUP BY 1) AS parts
  )) AS w;
