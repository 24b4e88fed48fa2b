"""Celery counterpart of gust's fan-out and chain benchmarks.

As a Celery app (``celery -A bench_celery worker ...``) it defines one task,
``bench.noop(phase, i)``. Each task records three times of its own: when its
body started, when its body returned, and when Celery had stored (or sent) its
result (the ``task_postrun`` signal, which fires after the result backend's
write). Every prefork child appends one fixed-width line per task to
``BENCH_TIMES_DIR/times-<pid>`` (one ``write`` on an ``O_APPEND`` file), so the
harness counts finished tasks from file sizes and reads exact times from the
lines, without touching the result backend:

    <phase> <i:9> <start:17.6f> <end:17.6f> <stored:17.6f> <S|F>\\n   (LINE_BYTES bytes)

Run as a script it only publishes, and prints one JSON object on stdout (an
``{"error": ...}`` object and exit status 1 on failure):
  publish --n N --phase P   N noop tasks sent with one producer (what
                            ``group(...).apply_async()`` does, minus the group's
                            result barrier, which would start consuming the rpc
                            reply queue and have it auto-deleted when this
                            process exits); prints when the first send started
                            and how long sending took
  chain --n M --phase P     a ``chain`` of M immutable noop signatures; prints
                            when it was sent
The gust harness (bench/src/celery.rs) runs these steps, starts and stops the
workers, waits on the times files and computes the figures.

Configuration, from the environment (the harness sets all of it):
  BENCH_BROKER_URL            amqp URL, default vhost
  BENCH_BACKEND_URL           db+postgresql+psycopg2://... of a fresh database, or rpc://
  BENCH_QUEUE                 unique queue name for this run (the rpc reply
                              queue is named BENCH_QUEUE + ".replies")
  BENCH_READY_DIR             folder where each worker drops a file once ready
  BENCH_WORKERS               workers to wait for: a ready worker consumes only
                              once all have dropped their file (a start barrier)
  BENCH_TIMES_DIR             folder of the times files
  BENCH_PREFETCH_MULTIPLIER   worker_prefetch_multiplier (default 1: prefetch =
                              concurrency, the same as gust's worker prefetch)

Each prefork child opens its result connection (PostgreSQL session or AMQP
producer) when it starts, before the start barrier, as gust's workers do; with
PostgreSQL it stores one warm-up result (``warm-up-<pid>``) to do so.

Broker settings mirror gust's delivery guarantee: ``task_acks_late=True``
(ack after the task ran and its result was stored). The queue is Celery's
default durable classic queue (gust uses quorum queues, which are slower).
"""

import argparse
import json
import os
import sys
import time

from celery import Celery, chain
from celery.signals import task_postrun, worker_process_init, worker_ready

QUEUE = os.environ.get("BENCH_QUEUE", "bench-celery")
REPLY_QUEUE = f"{QUEUE}.replies"
LINE_FORMAT = "{phase} {i:>9d} {start:17.6f} {end:17.6f} {stored:17.6f} {status}\n"
LINE_BYTES = 68
BARRIER_PATIENCE_S = 120.0

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
def noop(phase="x", i=-1):
    """Does nothing; returns its phase and index, when it started and when it returned (epoch seconds)."""
    start = time.time()
    return {"phase": phase, "i": i, "start": start, "end": time.time()}


_times_fd = None


def _times_file():
    global _times_fd
    if _times_fd is None:
        path = os.path.join(os.environ["BENCH_TIMES_DIR"], f"times-{os.getpid()}")
        _times_fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    return _times_fd


@task_postrun.connect
def _record_times(retval=None, state=None, args=(), kwargs=None, **_rest):
    """Appends the task's line once Celery has stored its result (postrun follows the backend write)."""
    stored = time.time()
    if state == "SUCCESS" and isinstance(retval, dict):
        fields = dict(retval, stored=stored, status="S")
    else:
        phase, i = (tuple(args or ()) + ("x", -1))[:2]
        fields = {"phase": phase, "i": i, "start": stored, "end": stored, "stored": stored, "status": "F"}
    line = LINE_FORMAT.format(**fields).encode()
    if len(line) != LINE_BYTES:
        raise RuntimeError(f"times line of {len(line)} bytes, expected {LINE_BYTES}: {line!r}")
    os.write(_times_file(), line)


@worker_process_init.connect
def _connect_for_results(**_kwargs):
    """Opens this child's result connection before it takes a task, as gust's workers connect at start."""
    backend = app.backend
    if hasattr(backend, "ResultSession"):
        # One stored result: the forked child keeps its pooled connection, and SQLAlchemy has compiled the
        # store's statements (about 30 ms of CPU per child, which all children would otherwise pay at once).
        backend.store_result(f"warm-up-{os.getpid()}", None, "SUCCESS")
    else:
        with app.amqp.producer_pool.acquire(block=True) as producer:
            producer.connection.ensure_connection(max_retries=3)


@worker_ready.connect
def _mark_ready_and_wait_for_the_others(sender=None, **_kwargs):
    """Drops this worker's ready file, then holds its event loop until every worker is ready."""
    folder = os.environ.get("BENCH_READY_DIR")
    if not folder:
        return
    with open(os.path.join(folder, f"ready-{os.getpid()}"), "w") as marker:
        marker.write("ready\n")
    expected = int(os.environ.get("BENCH_WORKERS", "1"))
    deadline = time.time() + BARRIER_PATIENCE_S
    while len(os.listdir(folder)) < expected and time.time() < deadline:
        time.sleep(0.005)


def _prepare_backend():
    """Creates the database backend's tables, or declares the rpc reply queue, before anything is sent."""
    # Name the rpc reply queue after the run's queue (so the harness deletes it) before the backend caches it.
    app._local.oid = REPLY_QUEUE
    backend = app.backend
    if hasattr(backend, "ResultSession"):
        # The workers' prefork children would race to create the tables.
        backend.ResultSession().close()
    if hasattr(backend, "binding"):
        # Declared before the first send, so that no result is sent to a missing queue (and dropped).
        with app.connection_for_write() as connection:
            backend.binding(connection.default_channel).declare()
    if hasattr(backend, "oid") and backend.oid != REPLY_QUEUE:
        raise RuntimeError(f"the rpc reply queue is {backend.oid}, not {REPLY_QUEUE}")


def publish(args):
    _prepare_backend()
    started = time.time()
    with app.producer_or_acquire() as producer:
        for i in range(args.n):
            noop.apply_async((args.phase, i), producer=producer)
    sent = time.time()
    return {"started": started, "send_s": sent - started}


def send_chain(args):
    _prepare_backend()
    started = time.time()
    chain(*(noop.si(args.phase, i) for i in range(args.n))).apply_async()
    return {"started": started, "send_s": time.time() - started}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    for name, help_text in [("publish", "send N noop tasks"), ("chain", "send a chain of N noop tasks")]:
        step = steps.add_parser(name, help=help_text)
        step.add_argument("--n", type=int, required=True, help="tasks")
        step.add_argument("--phase", required=True, help="one letter that tags the tasks' times lines")
    args = parser.parse_args()
    import celery

    try:
        if len(args.phase) != 1:
            raise ValueError(f"--phase must be one letter, not {args.phase!r}")
        out = publish(args) if args.step == "publish" else send_chain(args)
    except Exception as error:  # reported to the harness, which records the failure
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        return 1
    out.update(celery_version=celery.__version__, queue=QUEUE, reply_queue=REPLY_QUEUE)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
