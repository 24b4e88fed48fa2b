-- The YAML text each DAG version was parsed from, so the web UI's Code tab
-- shows the source a run used (its version's file, not today's file).
-- Versions stored before this migration have none (NULL) until the scheduler
-- parses an unchanged file again and fills it in.
ALTER TABLE dag_versions ADD COLUMN source text;
