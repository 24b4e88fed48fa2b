"""The official Airflow Python client (apache-airflow-client 3.3.x) against a gust stack.

Run by tests/tests/python_clients.rs with GUST_API (base URL), GUST_USERNAME,
GUST_PASSWORD, GUST_DAG_ID and GUST_TASK_ID (a task of that DAG whose log
shows `dag_run.conf.greeting`).
Exits non-zero, with the failing step, when the client cannot do what an
Airflow user's script does: log in, list DAGs, trigger with conf, wait for the
run, list its task instances and read a task's log.
"""

import json
import os
import sys
import time
import urllib.request

import airflow_client.client as client
from airflow_client.client.api import (
    dag_api,
    dag_run_api,
    import_error_api,
    monitor_api,
    pool_api,
    task_instance_api,
    variable_api,
    version_api,
)
from airflow_client.client.models.variable_body import VariableBody
from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

API = os.environ["GUST_API"].rstrip("/")
DAG_ID = os.environ["GUST_DAG_ID"]
TASK_ID = os.environ["GUST_TASK_ID"]
GREETING = "hello-from-the-airflow-client"


def step(name):
    print(f"--- {name}", flush=True)


def access_token():
    """POST /auth/token, as Airflow 3's simple auth manager answers it."""
    body = json.dumps({"username": os.environ["GUST_USERNAME"], "password": os.environ["GUST_PASSWORD"]}).encode()
    request = urllib.request.Request(f"{API}/auth/token", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201, f"login answered {response.status}"
        return json.load(response)["access_token"]


def main():
    step("log in")
    configuration = client.Configuration(host=API, access_token=access_token())
    with client.ApiClient(configuration) as api_client:
        step("health and version")
        health = monitor_api.MonitorApi(api_client).get_health()
        assert health.metadatabase.status == "healthy", health
        print("gust version", version_api.VersionApi(api_client).get_version().version)

        dags = dag_api.DAGApi(api_client)
        step("list DAGs")
        listed = dags.get_dags(limit=100)
        assert DAG_ID in [d.dag_id for d in listed.dags], listed
        assert listed.total_entries >= 1
        step("get one DAG and unpause it")
        dag = dags.get_dag(DAG_ID)
        assert dag.dag_id == DAG_ID
        from airflow_client.client.models.dag_patch_body import DAGPatchBody
        dags.patch_dag(DAG_ID, DAGPatchBody(is_paused=False))

        runs = dag_run_api.DagRunApi(api_client)
        step("trigger a run with conf")
        run = runs.trigger_dag_run(DAG_ID, TriggerDAGRunPostBody(logical_date=None, conf={"greeting": GREETING}))
        run_id = run.dag_run_id
        assert run.conf == {"greeting": GREETING}, run.conf
        step(f"wait for run {run_id}")
        deadline = time.monotonic() + 90
        while True:
            state = runs.get_dag_run(DAG_ID, run_id).state
            if state in ("success", "failed"):
                break
            assert time.monotonic() < deadline, f"run still {state} after 90 s"
            time.sleep(0.5)
        assert state == "success", f"run ended {state}"
        listed_runs = runs.get_dag_runs(DAG_ID, limit=10)
        assert run_id in [r.dag_run_id for r in listed_runs.dag_runs]

        tis = task_instance_api.TaskInstanceApi(api_client)
        step("list the run's task instances")
        instances = tis.get_task_instances(DAG_ID, run_id)
        states = {ti.task_id: ti.state for ti in instances.task_instances}
        assert states and all(s == "success" for s in states.values()), states
        step("read a task's log")
        ti = tis.get_task_instance(DAG_ID, run_id, TASK_ID)
        log = tis.get_log(DAG_ID, run_id, TASK_ID, ti.try_number, full_content=True)
        text = json.dumps(log.to_dict(), default=str)
        assert GREETING in text, f"log of {TASK_ID} does not mention the conf: {text[:500]}"
        step("list across DAGs and runs with filters and order_by")
        across = runs.get_dag_runs("~", state=["success"], order_by=["-start_date"], limit=5)
        assert run_id in [r.dag_run_id for r in across.dag_runs], across
        every_ti = tis.get_task_instances("~", "~", state=["success"], order_by=["task_id"])
        assert every_ti.total_entries >= len(states), every_ti.total_entries
        assert [ti.task_id for ti in every_ti.task_instances] == sorted(ti.task_id for ti in every_ti.task_instances)
        tagged = dags.get_dags(tags=["compat"], dag_id_pattern=DAG_ID[:3], paused=False)
        assert [d.dag_id for d in tagged.dags] == [DAG_ID], tagged

        step("variables, pools and import errors")
        variables = variable_api.VariableApi(api_client)
        variables.post_variable(VariableBody(key="compat_key", value="compat-value", description="from the client"))
        assert variables.get_variable("compat_key").value == "compat-value"
        assert "compat_key" in [v.key for v in variables.get_variables(limit=10).variables]
        variables.delete_variable("compat_key")
        pools = pool_api.PoolApi(api_client).get_pools(order_by=["name"])
        assert "default_pool" in [p.name for p in pools.pools], pools
        import_error_api.ImportErrorApi(api_client).get_import_errors()
    print("airflow client compatibility: OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # the test prints this output on failure
        import traceback
        traceback.print_exc()
        sys.exit(1)
