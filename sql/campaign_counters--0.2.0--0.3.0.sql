-- campaign_counters 0.2.0 -> 0.3.0: the counters follow DDL, key changes and campaign rows that appear; campaign_funnel(); campaign_costs().
\echo Use "ALTER EXTENSION campaign_counters UPDATE TO '0.3.0'" to load this file. \quit

-- Attachments remember what their counters depend on, and which partitions are counted.
ALTER TABLE campaign_counters.attachments ADD COLUMN signature text;
COMMENT ON COLUMN campaign_counters.attachments.signature IS
    'Types of the counted columns and storage of the counted tables when last checked: a DDL that changes them recounts the pair.';

CREATE TABLE campaign_counters.partitions (
    partition  regclass PRIMARY KEY,
    recipients regclass NOT NULL
);
COMMENT ON TABLE campaign_counters.partitions IS
    'Partitions of attached recipients tables whose rows are counted: detaching or dropping one takes its rows out of the counters.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.partitions', '');
REVOKE ALL ON campaign_counters.partitions FROM PUBLIC;
GRANT SELECT ON campaign_counters.partitions TO PUBLIC;
INSERT INTO campaign_counters.partitions (partition, recipients)
SELECT t.relid, a.recipients
  FROM campaign_counters.attachments a, pg_partition_tree(a.recipients) t
 WHERE t.relid <> a.recipients::oid;

CREATE FUNCTION campaign_counters.count_new_campaigns() RETURNS trigger
    LANGUAGE c SET search_path = pg_catalog, pg_temp
    AS 'MODULE_PATHNAME', 'count_new_campaigns_trigger_wrapper';
COMMENT ON FUNCTION campaign_counters.count_new_campaigns() IS
    'Deferred trigger installed by attach() on the campaigns table: at commit, a campaign row that appeared (inserted, or its id changed) gets the counts of the recipients that carry its id.';

CREATE FUNCTION campaign_counters.follow_ddl(relations oid[])
    RETURNS void LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'follow_ddl_wrapper';
COMMENT ON FUNCTION campaign_counters.follow_ddl(oid[]) IS
    'Called by the event trigger after DDL: re-validates the attached pairs the relations belong to, gives new partitions their triggers and counts, takes detached ones out, and recounts after a type change or rewrite.';
REVOKE EXECUTE ON FUNCTION campaign_counters.follow_ddl(oid[]) FROM PUBLIC;

-- Campaign rows that appear count the recipients that already carry their id.
DO $$
DECLARE
    campaigns regclass;
BEGIN
    FOR campaigns IN SELECT a.campaigns FROM campaign_counters.attachments a LOOP
        EXECUTE format('CREATE CONSTRAINT TRIGGER campaign_counters_new_campaign AFTER INSERT ON %s
                          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                          EXECUTE FUNCTION campaign_counters.count_new_campaigns()', campaigns);
        EXECUTE format('CREATE CONSTRAINT TRIGGER campaign_counters_campaign_id AFTER UPDATE ON %s
                          DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
                          WHEN (pg_catalog.to_jsonb(OLD) OPERATOR(pg_catalog.->) ''id'' IS DISTINCT FROM pg_catalog.to_jsonb(NEW) OPERATOR(pg_catalog.->) ''id'')
                          EXECUTE FUNCTION campaign_counters.count_new_campaigns()', campaigns);
    END LOOP;
END
$$;

COMMENT ON FUNCTION campaign_counters.verify_campaign_counters(text, regclass) IS
    'Reports every counter whose stored value differs from a recount with the trigger''s rules (one row each; stored NULL for a NULL counter), and each campaign id whose recipients have no campaign row (counter ''(no campaign row)'', actual = its recipients). Reads both in one snapshot; writes and locks nothing.';
COMMENT ON FUNCTION campaign_counters.purge_parked_events(interval) IS
    'Applies the parked events whose id a recipient has now (every attachment), then deletes parked events older than the given age (Meta stops retrying after 7 days) and returns how many it deleted. Runs as the extension owner: EXECUTE on it is the right to purge.';

-- Dropping a counted partition recounts its attached root.
CREATE OR REPLACE FUNCTION campaign_counters.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[] := ARRAY(SELECT objid FROM pg_event_trigger_dropped_objects()
                            WHERE classid = 'pg_catalog.pg_class'::regclass AND objsubid = 0);
    orphan regclass;
    orphan_campaigns regclass;
    trigger_name text;
    trigger_table regclass;
    shrunk regclass;
BEGIN
    FOR orphan, orphan_campaigns IN
        DELETE FROM campaign_counters.attachments
         WHERE recipients::oid = ANY (dropped) OR campaigns::oid = ANY (dropped)
        RETURNING recipients, campaigns
    LOOP
        DELETE FROM campaign_counters.partitions WHERE recipients = orphan;
        IF orphan_campaigns::oid <> ALL (dropped) THEN
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_new_campaign ON %s', orphan_campaigns);
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_campaign_id ON %s', orphan_campaigns);
        END IF;
        CONTINUE WHEN orphan::oid = ANY (dropped);
        FOR trigger_name, trigger_table IN
            SELECT t.tgname, t.tgrelid::regclass FROM pg_trigger t
             WHERE t.tgfoid = 'campaign_counters.count_recipients()'::regprocedure
               AND t.tgrelid IN (SELECT orphan::oid UNION SELECT relid FROM pg_partition_tree(orphan))
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, trigger_table);
        END LOOP;
    END LOOP;
    FOR shrunk IN
        WITH gone AS (
            DELETE FROM campaign_counters.partitions WHERE partition::oid = ANY (dropped) RETURNING recipients)
        SELECT DISTINCT a.campaigns FROM gone JOIN campaign_counters.attachments a USING (recipients)
    LOOP
        PERFORM campaign_counters.recalc_campaign_counters(campaigns => shrunk);
    END LOOP;
    DELETE FROM campaign_counters.parked_events WHERE recipients::oid = ANY (dropped);
    DELETE FROM campaign_counters.recipient_failures WHERE recipients::oid = ANY (dropped);
    DELETE FROM campaign_counters.message_pricing WHERE recipients::oid = ANY (dropped);
END
$$;
COMMENT ON FUNCTION campaign_counters.forget_dropped_tables() IS
    'Event trigger: forgets attachments, parked events, failure details and pricing of dropped tables, drops the counter triggers left on the surviving table of a pair, and recounts a pair that lost a partition.';

CREATE FUNCTION campaign_counters.follow_schema_changes() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    touched oid[] := ARRAY(SELECT objid FROM pg_event_trigger_ddl_commands()
                            WHERE classid = 'pg_catalog.pg_class'::regclass);
BEGIN
    IF touched <> '{}' AND EXISTS (SELECT FROM campaign_counters.attachments) THEN
        PERFORM campaign_counters.follow_ddl(touched);
    END IF;
END
$$;
COMMENT ON FUNCTION campaign_counters.follow_schema_changes() IS
    'Event trigger: after ALTER TABLE or CREATE TABLE, brings the attached pairs the changed tables belong to up to date (see follow_ddl).';

CREATE EVENT TRIGGER campaign_counters_follow_schema_changes ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE')
    EXECUTE FUNCTION campaign_counters.follow_schema_changes();


-- campaign_funnel(): what a campaign dashboard shows, one row per campaign. Rates come from the
-- counters the trigger keeps exact; the percentiles of sent->delivered and delivered->read come
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
          FROM %1$s c
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

-- Status events never wait for a recipient row another transaction holds: outcome carried.
COMMENT ON FUNCTION campaign_counters.apply_recipient_status(text, text, timestamptz, regclass) IS
    'Applies one status event (sent, delivered, read, played, failed) idempotently and in any order: status only moves up, each timestamp keeps its earliest time. Never waits for a recipient row another transaction holds. Returns applied, duplicate, stale, parked (no recipient has the id yet) or carried (the row was busy; the event is stored and applied by the next event for the id or apply_parked_events()).';
COMMENT ON FUNCTION campaign_counters.apply_whatsapp_webhook(jsonb, regclass) IS
    'Applies every status of a raw Meta WhatsApp webhook body in one set-based pass, never waiting for a recipient row another transaction holds; one row per status item with its outcome (applied, duplicate, stale, parked, carried, ignored, invalid). Stores errors[] of failed statuses and the first pricing of each message.';

-- What each campaign cost: the pricing Meta's status webhooks carry, recorded once per message
-- (the first status that carries it), and campaign_costs() counting a campaign's messages per
-- pricing. Dashboards multiply by their rate card.

CREATE TABLE campaign_counters.message_pricing (
    recipients          regclass    NOT NULL,
    whatsapp_message_id text        NOT NULL,
    pricing_model       text,
    category            text,
    pricing_type        text,
    billable            boolean,
    priced_at           timestamptz NOT NULL,
    PRIMARY KEY (recipients, whatsapp_message_id)
);
COMMENT ON TABLE campaign_counters.message_pricing IS
    'Meta''s pricing (pricing_model, category, type, billable) per message id, from the first status that carried it.';
COMMENT ON COLUMN campaign_counters.message_pricing.priced_at IS
    'Time of the status the pricing came from.';
SELECT pg_catalog.pg_extension_config_dump('campaign_counters.message_pricing', '');
REVOKE ALL ON campaign_counters.message_pricing FROM PUBLIC;

CREATE FUNCTION campaign_counters.campaign_costs(campaign_id text, campaigns regclass DEFAULT NULL)
    RETURNS TABLE (pricing_model text, category text, pricing_type text, billable boolean, messages bigint)
    LANGUAGE c STABLE
    AS 'MODULE_PATHNAME', 'campaign_costs_wrapper';
COMMENT ON FUNCTION campaign_counters.campaign_costs(text, regclass) IS
    'A campaign''s messages (or, with campaign_id NULL, every campaign''s) per pricing Meta reported: pricing_model, category, pricing_type, billable, and how many messages; most first. Multiply by your rate card. campaigns NULL means the only attachment. Needs SELECT on both tables.';
COMMENT ON FUNCTION campaign_counters.detach(regclass) IS
    'Removes the counter triggers of an attached recipients table and forgets it (with its parked events, failure details and pricing). NULL means campaign_recipients on the search_path.';
