-- DDL on attached tables must not leave the counters behind.
--  * Dropping an attached table forgets the attachment, its parked events, failure details and pricing;
--    when the campaigns table goes first, the counter triggers on the recipients table go too
--    (each write would otherwise fail with "not attached"). Dropping a counted partition
--    recounts its attached root, whose rows it took with it.
--  * After ALTER TABLE or CREATE TABLE on an attached table or partition, follow_ddl()
--    re-validates the pair (refusing a change it cannot follow), gives new partitions their
--    triggers and counts, takes detached partitions out, and recounts after a type change.

CREATE FUNCTION campaign_counters.forget_dropped_tables() RETURNS event_trigger
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
        DELETE FROM campaign_counters.maintenance WHERE recipients = orphan;
        IF orphan_campaigns::oid <> ALL (dropped) THEN
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_new_campaign ON %s', orphan_campaigns);
            EXECUTE format('DROP TRIGGER IF EXISTS campaign_counters_campaign_id ON %s', orphan_campaigns);
            -- The recipients are gone; what their writes left pending still belongs in the counters.
            PERFORM campaign_counters.fold_orphaned_changes(orphan_campaigns);
        ELSE
            DELETE FROM campaign_counters.pending_changes WHERE campaigns = orphan_campaigns;
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
    'Event trigger: forgets attachments, parked events, failure details, pricing and pending changes of dropped tables (pending changes of a dropped recipients table are folded into its surviving campaigns table first), drops the counter triggers left on the surviving table of a pair, and recounts a pair that lost a partition.';

CREATE EVENT TRIGGER campaign_counters_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION campaign_counters.forget_dropped_tables();

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
