-- `gust db clean` and the scheduler's retention find expired rows without
-- scanning history: finished runs by the time they ended, dead letters by
-- the time they arrived (event_log has event_log_by_time).
CREATE INDEX dag_runs_finished_by_end ON dag_runs ((coalesce(end_date, start_date, queued_at)))
    WHERE state IN ('success', 'failed');
CREATE INDEX dead_letters_by_time ON dead_letters (received_at);

-- Autovacuum for the tables updated on every state change (docs/operations.md,
-- "Autovacuum"): PostgreSQL's default waits for 20% of a table to be dead
-- rows, which for ten million task instances is two million; vacuum and
-- analyze these after 2% instead, so the partial indexes the scheduler scans
-- stay small and the planner's statistics fresh.
ALTER TABLE task_instances SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
ALTER TABLE dag_runs SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
