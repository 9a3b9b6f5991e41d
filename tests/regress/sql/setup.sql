-- The extension installs, and the application's tables (tests/fixtures/reference_schema.sql)
-- load next to it. (Every file starts with helpers/begin.sql, which does the same quietly and
-- adds the helpers, and ends with helpers/end.sql, which drops it all again.)
CREATE EXTENSION campaign_counters;
-- (A catalog query rather than \dx, whose columns differ between psql versions.)
SELECT e.extname, e.extversion, e.extnamespace::regnamespace AS schema, c.description
  FROM pg_extension e JOIN pg_description c ON c.objoid = e.oid AND c.classoid = 'pg_extension'::regclass
 WHERE e.extname = 'campaign_counters';

\getenv abs_srcdir PG_ABS_SRCDIR
\set reference_schema :abs_srcdir '/../fixtures/reference_schema.sql'
\i :reference_schema
DROP TABLE campaign_recipients, marketing_campaigns;
DROP EXTENSION campaign_counters;
