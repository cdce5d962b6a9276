"""Benchmark the voter-list import against its floor and the naive baseline (see scripts/bench).

    python scripts/bench_import.py --rows 1000000 --runs 1 --database-url ... --redis-url ...

Generates a messy voter file (cp1252, mixed phone formats, ~4% bad numbers, duplicates, ZIP+4
and ZIPs missing their leading zeros, extra columns), then measures, each phase in its own
process so each peak memory (ru_maxrss) is its own:

- floor: read the same CSV, keep the digits of the cell column, dedupe, COPY three columns;
- engine: the real import (receive_upload + start + run) into a fresh campaign;
- naive: contacts.textable_phone (the number policy: phonenumbers parse, validity, region, type)
  on every row with no caching, deduping, to check the engine's counts and time the baseline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Encrypts the benchmark database's secrets (a Fernet key; gotv/encryption.py).
BENCH_ENCRYPTION_KEY = "7eNhgs-o2TXQ6xDvfXWsVL1Jb38-2C8nqjRq2XRtN8s="

HEADER = ["VANID", "FirstName", "LastName", "CellPhone", "Phone", "ZIP5", "Precinct", "Party"]
FIRST = ["María", "José", "Zoë", "François", "Ana", "JAMES", "wei", "Aisha", "Søren", "Chloé"]
LAST = ["García", "Smith", "Núñez", "O'Brien", "Müller", "chen", "KHAN", "de la Cruz", "Lee"]
FORMATS = [
    "({a}) {b}-{c}",
    "{a}.{b}.{c}",
    "{a}-{b}-{c}",
    "{a}{b}{c}",
    "+1 {a} {b} {c}",
    "1-{a}-{b}-{c}",
    "{a}-{b}-{c} x12",
]
BAD = ["555-0101", "{a}-{b}", "800-{b}-{c}", "call me", "", "123-456-7890", "+44 20 {b}"]


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- Generating the file ----------------------------------------------------------------------


def generate(path: str, rows: int, seed: int = 2026) -> dict[str, Any]:
    import zipcodes

    from gotv.lists.contacts import area_code_states

    rng = random.Random(seed)
    area_codes = sorted(area_code_states())
    zips = [entry["zip_code"] for entry in zipcodes.list_all()[::7]]
    earlier: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    with open(path, "w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        for number in range(rows):
            writer.writerow(make_row(rng, number, area_codes, zips, earlier))
    return {"seconds": time.perf_counter() - started, "bytes": os.path.getsize(path)}


def make_row(
    rng: random.Random,
    number: int,
    area_codes: list[str],
    zips: list[str],
    earlier: list[tuple[str, str, str]],
) -> list[str]:
    roll = rng.random()
    if roll < 0.05 and earlier:  # the same person again, typed differently
        a, b, c = rng.choice(earlier)
        cell = rng.choice(FORMATS).format(a=a, b=b, c=c)
    else:
        a, b, c = rng.choice(area_codes), f"{rng.randint(200, 999)}", f"{rng.randint(0, 9999):04d}"
        template = rng.choice(BAD) if roll > 0.96 else rng.choice(FORMATS)
        cell = template.format(a=a, b=b, c=c)
        if len(earlier) < 50000:
            earlier.append((a, b, c))
    zip5 = rng.choice(zips)
    zip_roll = rng.random()
    if zip_roll < 0.1:
        zip5 = zip5 + f"-{rng.randint(0, 9999):04d}"
    elif zip_roll < 0.2:
        zip5 = zip5.lstrip("0") or "0"
    return [
        str(100000 + number),
        rng.choice(FIRST),
        rng.choice(LAST),
        cell,
        f"{rng.choice(area_codes)}-555-{rng.randint(0, 9999):04d}",
        zip5,
        f"P-{rng.randint(1, 400)}",
        rng.choice(["D", "R", "I", "", "=cmd"]),
    ]


# --- The phases -------------------------------------------------------------------------------


def read_cells(path: str) -> Any:
    with open(path, encoding="cp1252", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        yield from reader


def floor(path: str, database_url: str) -> dict[str, Any]:
    """Read, keep digits, dedupe, COPY (campaign_id, cell, first_name): no validation.

    The table has the contact table's indexes on those columns (unique campaign and cell, cell,
    campaign), so the floor pays the same index upkeep as a real load.
    """
    import psycopg

    started = time.perf_counter()
    conninfo = database_url.replace("postgresql+psycopg://", "postgresql://")
    seen: set[str] = set()
    with psycopg.connect(conninfo) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bench_floor "
            "(campaign_id int, cell varchar(20), first_name varchar(100),"
            " UNIQUE (campaign_id, cell))"
        )
        connection.execute("CREATE INDEX IF NOT EXISTS bench_floor_cell ON bench_floor (cell)")
        connection.execute("CREATE INDEX IF NOT EXISTS bench_floor_c ON bench_floor (campaign_id)")
        with connection.cursor() as cursor, cursor.copy("COPY bench_floor FROM STDIN") as copy:
            buffer = io.StringIO()
            for count, row in enumerate(read_cells(path), 1):
                digits = "".join(ch for ch in row[3] if ch.isdigit())
                if digits and digits not in seen:
                    seen.add(digits)
                    buffer.write(f"1\t+{digits[:19]}\t{row[1]}\n")
                if count % 5000 == 0:
                    copy.write(buffer.getvalue().encode())
                    buffer = io.StringIO()
            copy.write(buffer.getvalue().encode())
        connection.commit()
        seconds = time.perf_counter() - started
        connection.execute("DROP TABLE bench_floor")
    return {"seconds": seconds, "loaded": len(seen), "peak_mb": peak_mb()}


def naive(path: str) -> dict[str, Any]:
    """textable_phone (the number policy) on every row, no cache: the reference counts and the
    naive time."""
    from gotv.lists.contacts import InvalidPhone, textable_phone

    started = time.perf_counter()
    seen: set[str] = set()
    rejected = duplicates = 0
    for row in read_cells(path):
        if not any(value.strip() for value in row):
            continue
        try:
            cell = textable_phone(row[3].strip(), "US")
        except InvalidPhone:
            rejected += 1
            continue
        if cell in seen:
            duplicates += 1
        seen.add(cell)
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "loaded": len(seen),
        "rejected": rejected,
        "duplicates": duplicates,
        "peak_mb": peak_mb(),
    }


def engine(path: str, database_url: str, redis_url: str) -> dict[str, Any]:
    """The real import into a fresh campaign through receive_upload + start + run."""
    import flask_migrate

    from gotv import create_app
    from gotv.db import db
    from gotv.lists import imports
    from gotv.models import Campaign, ImportMode, Organization, Role, User

    upload_dir = str(Path(path).parent / "uploads")  # inside the run's temporary directory
    app = create_app(
        {
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEYS": [BENCH_ENCRYPTION_KEY],
            "SQLALCHEMY_DATABASE_URI": database_url,
            "REDIS_URL": redis_url,
            "UPLOAD_DIR": upload_dir,
            "PUBLIC_URL": "http://127.0.0.1",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "bench",
            "TWILIO_FROM_NUMBER": "+15005550006",
            "TWILIO_API_URL": "http://127.0.0.1:9",
            "DEFAULT_REGION": "US",
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        organization = Organization(name="Bench")
        db.session.add(organization)
        db.session.flush()
        user = User(organization_id=organization.id, email=f"b{time.time_ns()}@x.test", name="B")
        user.role = Role.OWNER
        user.set_password("x")
        campaign = Campaign(organization_id=organization.id, name="Bench", script="Hi")
        db.session.add_all([user, campaign])
        db.session.commit()
        started = time.perf_counter()
        with open(path, "rb") as stream:
            imp = imports.receive_upload(campaign, user, "voters.csv", stream, upload_dir)
        imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
        db.session.commit()
        uploaded = time.perf_counter()
        imports.run(imp.id)
        seconds = time.perf_counter() - started
        db.session.refresh(imp)
        result = {
            "seconds": seconds,
            "upload_seconds": uploaded - started,
            "status": imp.status.value,
            "error": imp.error,
            "encoding": imp.encoding,
            "rows_read": imp.rows_read,
            "loaded": imp.loaded,
            "rejected": imp.rejected,
            "duplicates": imp.duplicates,
            "peak_mb": peak_mb(),
        }
    return result


def phase(args: argparse.Namespace) -> None:
    if args.phase == "generate":
        result = generate(args.file, args.rows)
    elif args.phase == "floor":
        result = floor(args.file, args.database_url)
    elif args.phase == "naive":
        result = naive(args.file)
    else:
        result = engine(args.file, args.database_url, args.redis_url)
    print(json.dumps(result))


def child(name: str, args: argparse.Namespace, file: str) -> dict[str, Any]:
    # Every phase runs in its own process, so each ru_maxrss is that phase's alone (a child
    # starts from its parent's high-water mark, so the parent stays small).
    command = [sys.executable, __file__, "--phase", name, "--file", file, "--rows", str(args.rows)]
    command += ["--database-url", args.database_url, "--redis-url", args.redis_url]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{name} failed:\n{done.stderr}")
    output = done.stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    print(f"  {name:6} {json.dumps(result)}", flush=True)
    return result


# --- Orchestration ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--naive", choices=["full", "skip"], default="full")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--phase", choices=["generate", "floor", "naive", "engine"])
    parser.add_argument("--file")
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return
    with tempfile.TemporaryDirectory(prefix="gotv-bench-") as work:
        file = str(Path(work) / "voters.csv")
        made = child("generate", args, file)
        size, seconds = made["bytes"] / 1e6, made["seconds"]
        print(f"generated {args.rows:,} rows, {size:.1f} MB in {seconds:.1f}s")
        runs = [(child("floor", args, file), child("engine", args, file)) for _ in range(args.runs)]
        reference = child("naive", args, file) if args.naive == "full" else None
    summarize(args.rows, runs, reference)


def summarize(
    rows: int, runs: list[tuple[dict[str, Any], dict[str, Any]]], reference: dict[str, Any] | None
) -> None:
    floor_s = statistics.median(f["seconds"] for f, _ in runs)
    engine_s = statistics.median(e["seconds"] for _, e in runs)
    ratio = statistics.median(e["seconds"] / f["seconds"] for f, e in runs)
    peak = max(e["peak_mb"] for _, e in runs)
    last = runs[-1][1]
    print(f"\nrows: {rows:,}   runs: {len(runs)} (medians)")
    print(f"floor : {floor_s:7.2f}s  {rows / floor_s:>10,.0f} rows/s")
    print(f"engine: {engine_s:7.2f}s  {rows / engine_s:>10,.0f} rows/s  ({ratio:.2f}x the floor)")
    print(f"engine peak memory: {peak:.0f} MB (ru_maxrss)   status: {last['status']}")
    print(
        f"engine counts: loaded {last['loaded']:,}, rejected {last['rejected']:,}, "
        f"duplicates {last['duplicates']:,}"
    )
    if reference:
        same = all(last[key] == reference[key] for key in ("loaded", "rejected", "duplicates"))
        print(
            f"naive : {reference['seconds']:7.2f}s  {rows / reference['seconds']:>10,.0f} rows/s"
            f"  ({reference['seconds'] / engine_s:.1f}x slower than the engine)"
        )
        print(f"counts match the naive reference: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
