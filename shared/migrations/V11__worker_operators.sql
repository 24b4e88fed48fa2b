-- What each worker can run, written when it starts: the queues it consumes
-- and its operators (built-ins with the gust version, custom operators with
-- what `gust-op-<name> --describe` printed). The API lists them.
ALTER TABLE component_heartbeats ADD COLUMN queues TEXT[] NOT NULL DEFAULT '{}';
ALTER TABLE component_heartbeats ADD COLUMN operators JSONB NOT NULL DEFAULT '[]';
