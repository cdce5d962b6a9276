"""`python -m workers`: the RQ worker, with the app context it owns and the outbox sweeper."""

from __future__ import annotations

import argparse
import logging
import threading
import time

from flask import Flask
from redis import Redis
from redis.exceptions import RedisError

from gotv import create_app
from gotv.db import db
from gotv.edge import queue
from workers.imports import sweep_imports
from workers.texting import release_idle_batches, sweep_outbox
from workers.worker import AppWorker

# Retries come due on their own; a pump must notice within seconds, not minutes.
SWEEP_EVERY_SECONDS = 5
# Idle batches are measured in minutes: release them every minute.
RELEASE_EVERY_SWEEPS = 12


def sweep_forever(app: Flask, stop: threading.Event) -> None:
    sweeps = 0
    while not stop.wait(SWEEP_EVERY_SECONDS):
        sweeps += 1
        with app.app_context():
            try:
                sweep_outbox()
                sweep_imports()
                if sweeps % RELEASE_EVERY_SWEEPS == 0:
                    release_idle_batches()
            except Exception:  # the sweeper must outlive a database or Redis outage
                logging.getLogger(__name__).exception("sweep failed")
            finally:
                db.session.remove()


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
    parser.add_argument("queues", nargs="*", default=list(queue.QUEUES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("twilio").setLevel(logging.WARNING)  # it logs every request's headers
    app = create_app()
    stop = threading.Event()
    if not args.burst:
        threading.Thread(target=sweep_forever, args=(app, stop), daemon=True).start()
    with app.app_context():
        connection = queue.redis()
    wait_for(connection)
    worker = AppWorker(args.queues, connection=connection)
    worker.app = app
    try:
        worker.work(burst=args.burst, with_scheduler=not args.burst)
    finally:
        stop.set()


if __name__ == "__main__":
    main()
