"""Celery counterpart of gust's fan-out and chain benchmarks.

As a Celery app (``celery -A bench_celery worker ...``) it defines one task,
``bench.noop``, which records when it started and when it returned.

Run as a script it is the driver: it sends
  (a) a ``group`` of N noop tasks and waits until every result is stored,
      measuring the wall time from the first send to the last result (the
      result table is polled every 20 ms, like the gust harness polls runs);
  (b) a ``chain`` of M noop tasks (immutable signatures) and computes each
      hop as start(n+1) - end(n) from the times the tasks recorded,
and prints one JSON object on stdout (an ``{"error": ...}`` object and exit
status 1 on failure). The gust harness (bench/src/celery.rs) starts the
workers, runs the driver and parses that JSON.

Configuration, from the environment (the harness sets all of it):
  BENCH_BROKER_URL            amqp URL, default vhost
  BENCH_BACKEND_URL           db+postgresql+psycopg2://... of a fresh database
  BENCH_QUEUE                 unique queue name for this run
  BENCH_READY_DIR             folder where each worker drops a file once ready
  BENCH_PREFETCH_MULTIPLIER   worker_prefetch_multiplier (default 1: prefetch =
                              concurrency, the same as gust's worker prefetch)

Broker settings mirror gust's delivery guarantee: ``task_acks_late=True``
(ack after the task ran and its result was stored). The queue is Celery's
default durable classic queue (gust uses quorum queues, which are slower).
"""

import argparse
import json
import os
import sys
import time

from celery import Celery, chain, group
from celery.signals import worker_ready

QUEUE = os.environ.get("BENCH_QUEUE", "bench-celery")

app = Celery(
    "bench_celery",
    broker=os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
    backend=os.environ.get("BENCH_BACKEND_URL", "db+postgresql+psycopg2://postgres@127.0.0.1:5432/celery_bench"),
)
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=int(os.environ.get("BENCH_PREFETCH_MULTIPLIER", "1")),
    task_default_queue=QUEUE,
    task_default_exchange=QUEUE,
    task_default_routing_key=QUEUE,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_enable_remote_control=False,
    worker_send_task_events=False,
    task_send_sent_event=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="bench.noop")
def noop(i=None):
    """Does nothing; returns when it started and when it returned (epoch seconds)."""
    start = time.time()
    return {"i": i, "start": start, "end": time.time()}


@worker_ready.connect
def _mark_ready(sender=None, **_kwargs):
    folder = os.environ.get("BENCH_READY_DIR")
    if folder:
        with open(os.path.join(folder, f"ready-{os.getpid()}"), "w") as marker:
            marker.write("ready\n")


def _stored_counts(engine):
    from sqlalchemy import text

    with engine.connect() as connection:
        row = connection.execute(
            text(
                "SELECT count(*) FILTER (WHERE status = 'SUCCESS'), "
                "count(*) FILTER (WHERE status = 'FAILURE') FROM celery_taskmeta"
            )
        ).one()
    return int(row[0]), int(row[1])


def _wait_for_results(engine, before, n, deadline, what):
    """Polls the result table every 20 ms until n more tasks succeeded."""
    while True:
        ok, failed = _stored_counts(engine)
        if failed:
            raise RuntimeError(f"{failed} {what} tasks failed")
        if ok - before >= n:
            return time.time()
        if time.time() > deadline:
            raise RuntimeError(f"only {ok - before} of {n} {what} tasks finished in time")
        time.sleep(0.02)


def drive(args):
    from sqlalchemy import create_engine

    backend = os.environ.get("BENCH_BACKEND_URL", "")
    engine = create_engine(backend[len("db+"):] if backend.startswith("db+") else backend)
    import celery

    out = {"celery_version": celery.__version__, "queue": QUEUE}

    # Warm-up: one round trip creates the result tables and proves the workers consume.
    noop.delay(-1).get(timeout=120, interval=0.05)

    # (a) fan-out
    before, _ = _stored_counts(engine)
    started = time.time()
    group(noop.s(i) for i in range(args.fanout)).apply_async()
    sent = time.time()
    finished = _wait_for_results(engine, before, args.fanout, started + args.timeout, "fan-out")
    wall = finished - started
    out["fanout"] = {
        "n": args.fanout,
        "wall_s": wall,
        "send_s": sent - started,
        "tasks_per_s": args.fanout / wall,
    }

    # (b) chain
    before, _ = _stored_counts(engine)
    started = time.time()
    last = chain(*(noop.si(i) for i in range(args.chain))).apply_async()
    _wait_for_results(engine, before, args.chain, started + args.timeout, "chain")
    nodes = []
    node = last
    while node is not None:
        nodes.append(node)
        node = node.parent
    nodes.reverse()
    if len(nodes) != args.chain:
        raise RuntimeError(f"the chain has {len(nodes)} results, expected {args.chain}")
    times = [n.get(timeout=60, interval=0.05) for n in nodes]
    hops_ms = [(times[k + 1]["start"] - times[k]["end"]) * 1000.0 for k in range(len(times) - 1)]
    out["chain"] = {"n": args.chain, "hops_ms": hops_ms, "total_s": times[-1]["end"] - started}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fanout", type=int, default=10_000, help="tasks in the group")
    parser.add_argument("--chain", type=int, default=200, help="tasks in the chain")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds each part may take")
    args = parser.parse_args()
    try:
        out = drive(args)
    except Exception as error:  # reported to the harness, which records the failure
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
