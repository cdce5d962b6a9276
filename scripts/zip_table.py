"""Write gotv/data/zips.csv from the zipcodes package: `python scripts/zip_table.py`.

The shipped table is a few MB of CSV, where the zipcodes package holds 150 MB of objects while
it runs: gotv reads the table, and only this script (a tool, in the dev extra) needs zipcodes.
tests/test_imports.py checks that the two agree.
"""

from __future__ import annotations

import csv

import zipcodes

from gotv.lists.contacts import ZIP_TABLE


def zipcodes_rows() -> list[list[str]]:
    """The table's rows computed from the zipcodes package: zip, state, zone, area codes."""
    return [
        [
            entry["zip_code"],
            entry.get("state") or "",
            entry.get("timezone") or "",
            " ".join(entry.get("area_codes") or ()),
        ]
        for entry in zipcodes.list_all()
    ]


def write_zip_table() -> None:
    with ZIP_TABLE.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["zip", "state", "timezone", "area_codes"])
        writer.writerows(zipcodes_rows())


if __name__ == "__main__":
    write_zip_table()
