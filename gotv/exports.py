"""CSV files we hand to people: streamed, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator

# A cell starting with one of these is run as a formula by Excel, LibreOffice and Sheets.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """The value as text that a spreadsheet shows as text, never runs as a formula (OWASP)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_TRIGGERS) else text


def csv_lines(header: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """Yield a CSV file line by line, every cell made formula-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in ([header], rows):
        for values in row:
            writer.writerow([safe_cell(value) for value in values])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
