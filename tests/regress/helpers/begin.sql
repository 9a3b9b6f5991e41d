\set ECHO none
-- Included at the start of every file of the suite (tests/regress/sql), so that each file runs
-- alone and in any order: the extension, the application's tables (empty, not attached), and
-- the helpers the files use. Quiet: a file's output shows only what the file itself does.
-- helpers/end.sql, included at the end of every file, drops all of it again.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS campaign_counters;
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
RESET client_min_messages;
\set ECHO all
