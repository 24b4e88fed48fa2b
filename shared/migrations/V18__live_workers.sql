-- The workers whose advertised queues and operators count: not stopped, and
-- heartbeated within the last minute. Dispatch, the args_schema check, the
-- scheduler's "waiting for an operator" warning and the health API all read
-- this one definition.
CREATE VIEW live_workers AS
SELECT name, queues, operators, last_heartbeat_at FROM component_heartbeats
WHERE kind = 'worker' AND stopped_at IS NULL AND last_heartbeat_at > now() - interval '1 minute';
