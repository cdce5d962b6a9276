"""`python -m workers`: the RQ worker, with the app context it owns and the outbox sweeper."""

from __future__ import annotations

import argparse
import os
import threading
import time

from redis import Redis
from redis.exceptions import RedisError

from gotv import create_app, logs
from gotv.edge import metrics, queue
from workers.sweeper import sweep_forever
from workers.worker import AppWorker


def wait_for(connection: Redis, seconds: float = 30) -> None:
    """Wait for Redis to answer, so the worker may start before Redis does."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            connection.ping()
            return
        except RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument(
        "--metrics-port",
        type=int,
        help="serve this host's metrics (PROMETHEUS_MULTIPROC_DIR) on this port, for a host "
        "with workers and no web process",
    )
    parser.add_argument("queues", nargs="*", default=list(queue.QUEUES))
    args = parser.parse_args(argv)
    app = create_app()
    logs.configure(app.config["LOG_LEVEL"], as_json=app.config["LOG_FORMAT"] == "json")
    stop = threading.Event()
    with app.app_context():
        connection = queue.redis()
    wait_for(connection)
    if not args.burst:
        sweeper = threading.Thread(target=sweep_forever, args=(app, connection, stop), daemon=True)
        sweeper.start()
    if args.metrics_port:
        metrics.serve(args.metrics_port, app.config.get("PROMETHEUS_MULTIPROC_DIR"))
    worker = AppWorker(args.queues, connection=connection)
    worker.app = app
    try:
        # No rq scheduler (gotv schedules no jobs): it is a forked child that keeps the worker's
        # Redis sockets, so after a kill -9 Redis hands the next job to the dead worker's wait.
        worker.work(burst=args.burst)
    finally:
        stop.set()
        metrics.process_exited(os.getpid(), app.config.get("PROMETHEUS_MULTIPROC_DIR"))


if __name__ == "__main__":
    main()
