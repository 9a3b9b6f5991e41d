-- campaign_funnel(): what a campaign dashboard shows, one row per campaign. Rates come from the
-- counters the trigger keeps exact, with pending changes added (current_counters()); the percentiles of sent->delivered and delivered->read come
-- from one pass over the campaign's recipients (one pass over all recipients for all campaigns).

-- The row type, so that the function can take campaign_id and return it (PL/pgSQL allows no
-- parameter and result column of the same name).
CREATE TYPE campaign_counters.campaign_funnel_row AS (
    campaign_id              text,
    recipients               bigint,
    messages_pending         bigint,
    messages_sent            bigint,
    messages_delivered       bigint,
    messages_read            bigint,
    messages_failed          bigint,
    delivery_rate            numeric,
    read_rate                numeric,
    failure_rate             numeric,
    sent_to_delivered_median interval,
    sent_to_delivered_p90    interval,
    delivered_to_read_median interval,
    delivered_to_read_p90    interval,
    first_sent_at            timestamptz,
    last_event_at            timestamptz
);
COMMENT ON TYPE campaign_counters.campaign_funnel_row IS 'A row of campaign_counters.campaign_funnel().';

CREATE FUNCTION campaign_counters.campaign_funnel(campaign_id text DEFAULT NULL, campaigns regclass DEFAULT NULL)
    RETURNS SETOF campaign_counters.campaign_funnel_row
    LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    chosen_campaigns regclass;
    chosen_recipients regclass;
    pairs bigint;
    id_type text;
    filter text := '';
BEGIN
    SELECT count(*), min(a.campaigns::oid)::regclass, min(a.recipients::oid)::regclass
      INTO pairs, chosen_campaigns, chosen_recipients
      FROM campaign_counters.attachments a
     WHERE $2 IS NULL OR a.campaigns = $2;
    IF pairs = 0 AND $2 IS NOT NULL THEN
        RAISE EXCEPTION 'table % is not attached to campaign_counters', $2
            USING ERRCODE = '42704', HINT = 'Attach it with campaign_counters.attach(recipients, campaigns).';
    ELSIF pairs = 0 THEN
        RAISE EXCEPTION 'no table is attached to campaign_counters'
            USING ERRCODE = '42704', HINT = 'Attach one with campaign_counters.attach(recipients, campaigns).';
    ELSIF pairs > 1 THEN
        RAISE EXCEPTION '% table pairs are attached to campaign_counters; say which one', pairs
            USING ERRCODE = '22023', HINT = 'Pass the campaigns table, for example campaigns => ''marketing_campaigns''.';
    END IF;

    IF $1 IS NOT NULL THEN
        -- The id as the campaigns table types it, so both sides use their indexes.
        SELECT format_type(a.atttypid, a.atttypmod) INTO id_type
          FROM pg_attribute a WHERE a.attrelid = chosen_campaigns AND a.attname = 'id' AND NOT a.attisdropped;
        filter := format(' WHERE %%1$s = $1::%s', id_type);
        EXECUTE format('SELECT count(*) FROM %s c' || format(filter, 'c.id'), chosen_campaigns) INTO pairs USING $1;
        IF pairs = 0 THEN
            RAISE EXCEPTION 'campaign % does not exist in %', $1, chosen_campaigns USING ERRCODE = 'P0002';
        END IF;
    END IF;

    RETURN QUERY EXECUTE format($query$
        SELECT c.id::text,
               (c.messages_pending + c.messages_sent + c.messages_failed)::bigint,
               c.messages_pending::bigint, c.messages_sent::bigint, c.messages_delivered::bigint,
               c.messages_read::bigint, c.messages_failed::bigint,
               round(c.messages_delivered::numeric / nullif(c.messages_sent + c.messages_failed, 0), 4),
               round(c.messages_read::numeric / nullif(c.messages_delivered, 0), 4),
               round(c.messages_failed::numeric / nullif(c.messages_sent + c.messages_failed, 0), 4),
               t.to_delivered[1], t.to_delivered[2], t.to_read[1], t.to_read[2],
               t.first_sent_at, t.last_event_at
          FROM (SELECT s.id, n.messages_pending, n.messages_sent, n.messages_delivered,
                       n.messages_read, n.messages_failed
                  FROM %1$s s
                  JOIN campaign_counters.current_counters($1, %1$L::regclass) n ON n.campaign_id = s.id::text) c
          LEFT JOIN (SELECT r.campaign_id,
                            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r.delivered_at - r.sent_at) AS to_delivered,
                            percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY r.read_at - r.delivered_at) AS to_read,
                            min(r.sent_at)::timestamptz AS first_sent_at,
                            greatest(max(r.sent_at), max(r.delivered_at), max(r.read_at), max(r.failed_at))::timestamptz AS last_event_at
                       FROM %2$s r%3$s
                      GROUP BY r.campaign_id) t ON t.campaign_id = c.id%4$s
         ORDER BY c.id
        $query$, chosen_campaigns, chosen_recipients, format(filter, 'r.campaign_id'), format(filter, 'c.id'))
    USING $1;
END
$$;
COMMENT ON FUNCTION campaign_counters.campaign_funnel(text, regclass) IS
    'One row per campaign (or the one whose id is given as text): recipients, the five counters, delivery rate (delivered of sent plus failed), read rate (read of delivered), failure rate (failed of sent plus failed), median and 90th percentile of sent-to-delivered and delivered-to-read times, first sent_at and last event time. campaigns NULL means the only attachment. Needs SELECT on both tables.';
GRANT EXECUTE ON FUNCTION campaign_counters.campaign_funnel(text, regclass) TO PUBLIC;
