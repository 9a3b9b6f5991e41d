\set ECHO none
-- Included at the end of every file of the suite: drops what helpers/begin.sql created (the
-- attachment of the application's tables goes with them) and the extension, so the next file
-- starts from an empty database. An error here (an attachment or object a file left behind)
-- shows in the file's output.
SET client_min_messages = warning;
DROP VIEW counters;
DROP FUNCTION webhook(jsonb), expect_error(text);
DROP TABLE campaign_recipients, marketing_campaigns;
DROP EXTENSION campaign_counters;
RESET client_min_messages;
\set ECHO all
