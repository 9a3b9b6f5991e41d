-- The extension's objects as the catalogs define them: a fresh install and an upgraded one must match.
-- Privileges are compared as in effect: a NULL ACL (the default, as pg_upgrade and pg_restore leave
-- it when the privileges equal the default) shows as acldefault().
\pset footer off
SELECT pg_describe_object(classid, objid, objsubid) AS member FROM pg_depend
 WHERE refclassid = 'pg_extension'::regclass AND deptype = 'e'
   AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'campaign_counters') ORDER BY 1;
SELECT p.oid::regprocedure, pg_get_functiondef(p.oid), obj_description(p.oid, 'pg_proc'), coalesce(p.proacl, acldefault('f', p.proowner)) AS proacl
  FROM pg_proc p WHERE p.pronamespace = 'campaign_counters'::regnamespace ORDER BY p.oid::regprocedure::text COLLATE "C";
SELECT c.relname, c.relkind, coalesce(c.relacl, acldefault('r', c.relowner)) AS relacl, obj_description(c.oid, 'pg_class'),
       (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY a.attnum)
          FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped) AS columns
  FROM pg_class c WHERE c.relnamespace = 'campaign_counters'::regnamespace ORDER BY 1;
SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'campaign_counters'::regnamespace ORDER BY 1;
SELECT evtname, evtevent, evtfoid::regproc FROM pg_event_trigger ORDER BY 1;
SELECT coalesce(nspacl, acldefault('n', nspowner)) AS nspacl FROM pg_namespace WHERE nspname = 'campaign_counters';
SELECT extconfig::regclass[] FROM pg_extension WHERE extname = 'campaign_counters';
