-- campaign_counters 0.1.0 -> 0.2.0: forget attached tables when they are dropped; sweep parked events.
\echo Use "ALTER EXTENSION campaign_counters UPDATE TO '0.2.0'" to load this file. \quit

-- Dropping an attached table must not leave the extension pointing at it: the attachment, its
-- parked events and failure details go, and when the campaigns table goes first, the counter
-- triggers on the recipients table go too (each write would otherwise fail with "not attached").

CREATE FUNCTION campaign_counters.forget_dropped_tables() RETURNS event_trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    dropped oid[] := ARRAY(SELECT objid FROM pg_event_trigger_dropped_objects()
                            WHERE classid = 'pg_catalog.pg_class'::regclass AND objsubid = 0);
    orphan regclass;
    trigger_name text;
    trigger_table regclass;
BEGIN
    FOR orphan IN
        DELETE FROM campaign_counters.attachments
         WHERE recipients::oid = ANY (dropped) OR campaigns::oid = ANY (dropped)
        RETURNING recipients
    LOOP
        CONTINUE WHEN orphan::oid = ANY (dropped);
        FOR trigger_name, trigger_table IN
            SELECT t.tgname, t.tgrelid::regclass FROM pg_trigger t
             WHERE t.tgfoid = 'campaign_counters.count_recipients()'::regprocedure
               AND t.tgrelid IN (SELECT orphan::oid UNION SELECT relid FROM pg_partition_tree(orphan))
        LOOP
            EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, trigger_table);
        END LOOP;
    END LOOP;
    DELETE FROM campaign_counters.parked_events WHERE recipients::oid = ANY (dropped);
    DELETE FROM campaign_counters.recipient_failures WHERE recipients::oid = ANY (dropped);
END
$$;
COMMENT ON FUNCTION campaign_counters.forget_dropped_tables() IS
    'Event trigger: forgets attachments, parked events and failure details of dropped tables, and drops the counter triggers of a recipients table whose campaigns table was dropped.';

CREATE EVENT TRIGGER campaign_counters_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION campaign_counters.forget_dropped_tables();

-- The sweep for events parked while their recipient's id was still uncommitted elsewhere.
CREATE FUNCTION campaign_counters.apply_parked_events(recipients regclass DEFAULT NULL)
    RETURNS bigint LANGUAGE c VOLATILE
    AS 'MODULE_PATHNAME', 'apply_parked_events_wrapper';
COMMENT ON FUNCTION campaign_counters.apply_parked_events(regclass) IS
    'Applies and removes parked events whose message id a recipient has now, and returns how many. The trigger does this when an id arrives; this sweep catches events parked while the id''s transaction was still uncommitted. Schedule it every few minutes.';
