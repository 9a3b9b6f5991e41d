-- The extension and the application's tables (tests/fixtures/reference_schema.sql).
CREATE EXTENSION campaign_counters;
\dx campaign_counters

\getenv abs_srcdir PG_ABS_SRCDIR
\set reference_schema :abs_srcdir '/../fixtures/reference_schema.sql'
\i :reference_schema

-- Shows an error's SQLSTATE and message, and proves the failed statement left nothing behind
-- (the exception block rolls its subtransaction back).
CREATE FUNCTION expect_error(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE statement;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE || ': ' || SQLERRM;
END
$$;

-- A webhook body carrying the given statuses[], as Meta posts it.
CREATE FUNCTION webhook(statuses jsonb) RETURNS jsonb LANGUAGE sql AS $$
    SELECT jsonb_build_object('object', 'whatsapp_business_account', 'entry', jsonb_build_array(
        jsonb_build_object('id', '1', 'changes', jsonb_build_array(jsonb_build_object(
            'field', 'messages', 'value', jsonb_build_object('statuses', statuses))))))
$$;

-- Counters of every campaign, by name.
CREATE VIEW counters AS
SELECT name, messages_pending AS pending, messages_sent AS sent, messages_delivered AS delivered,
       messages_read AS read, messages_failed AS failed, total_target_customers AS target
  FROM marketing_campaigns ORDER BY name;
