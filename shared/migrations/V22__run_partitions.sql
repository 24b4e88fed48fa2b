-- Airflow 3's partitioned runs: the partition a run covers. gust's timetables
-- are not partitioned, so these stay null; `clearPartitions` and the run
-- responses read them as Airflow does.
ALTER TABLE dag_runs ADD COLUMN partition_key text, ADD COLUMN partition_date timestamptz;
