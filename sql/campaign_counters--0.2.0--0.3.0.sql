-- campaign_counters 0.2.0 -> 0.3.0
\echo Use "ALTER EXTENSION campaign_counters UPDATE TO '0.3.0'" to load this file. \quit
