"""Reading a CSV file record by record, accounting for every physical line.

Python's csv module, left to itself, lets one unclosed quote swallow every record after it into
one value, and fails the whole file at one value over its size limit. `Records` reads the same
CSV (RFC 4180 quoting; a quoted value may hold line breaks), but a record that cannot be read is
rejected on its own, with its line and the reason, and reading goes on at the next line:

- a quote that is never closed (the file ends inside it, or a stray quote later ends it where
  no quote may end: strict quoting), or a value that runs over more than MAX_RECORD_LINES
  lines: the record is rejected at its first line, and the lines it swallowed are read again;
- a stray quote, a value over MAX_FIELD characters, a line over MAX_LINE.

Plain functions with no Flask; used by the imports (gotv.lists.imports) and the opt-out
uploads (gotv.lists.contacts.read_list) alike.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections import deque
from collections.abc import Iterator
from typing import NamedTuple, Protocol

MAX_FIELD = 128 * 1024  # characters in one value (the csv module's own default)
MAX_LINE = 1024 * 1024  # characters in one physical line
MAX_RECORD_LINES = 20  # physical lines one record (a value with line breaks) may span
SHOWN = 200  # characters of a rejected line kept to show with its reason
DELIMITERS = (",", "\t", ";", "|")  # (a European Excel saves "CSV" with semicolons)

csv.field_size_limit(MAX_FIELD)  # (process-wide; the same as the csv module's default)


def windows_1252_where_not_utf8(error: UnicodeError) -> tuple[str, int]:
    """The codec error handler MIXED: bytes that are not UTF-8 read as Windows-1252.

    A file that is not all UTF-8 is most often two files joined: a UTF-8 export and rows
    from an older Excel. Read wholly as Windows-1252, every UTF-8 "José" becomes "JosÃ©"; so
    each character is read as UTF-8 where it is, and only the rest as Windows-1252 (an ASCII
    byte is never part of either, so no delimiter or line break is lost to a neighbour).
    """
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return error.object[error.start : error.end].decode("cp1252", errors="replace"), error.end


MIXED = "gotv-utf8-else-windows-1252"
codecs.register_error(MIXED, windows_1252_where_not_utf8)


class Lines(Protocol):
    def readline(self, size: int = -1, /) -> str: ...


class Record(NamedTuple):
    """One record: its first line's number and its values; or, when it could not be read,
    `values` None, the `reason` and the start of its first line. (A named tuple: a million are
    made per million rows.)"""

    line: int
    values: list[str] | None
    reason: str = ""
    text: str = ""


class RecordTooLong(Exception):
    """A record ran over MAX_RECORD_LINES lines, or a line over MAX_LINE characters."""


class Records:
    """The records of `lines` (a text file opened with newline="", or a StringIO), numbered
    from `first_line`."""

    def __init__(self, lines: Lines, delimiter: str, first_line: int = 1) -> None:
        self.lines = lines
        self.delimiter = delimiter
        self.next_line = first_line
        self.again: deque[tuple[int, str]] = deque()  # lines to read once more
        self.taken: list[tuple[int, str]] = []  # the lines of the record being read

    def __iter__(self) -> Iterator[Record]:
        taken = self.taken
        while True:
            reader = csv.reader(self.feed(), delimiter=self.delimiter, strict=True)
            try:
                for values in reader:
                    line = taken[0][0] if taken else self.next_line
                    taken.clear()
                    yield Record(line, values)
                if not taken:
                    return
                # (the file ended inside a quoted value: csv in strict mode says so)
            except csv.Error as error:
                yield self.bad(describe(error))
            except RecordTooLong as error:
                yield self.bad(str(error))

    def feed(self) -> Iterator[str]:
        """The lines for the csv module, remembering those of the record being read. (Every
        line of the file passes here: its names are local, for speed.)"""
        readline, again, taken = self.lines.readline, self.again, self.taken
        size = MAX_LINE + 1
        while True:
            if again:
                number, line = again.popleft()
            else:
                line = readline(size)
                if not line:
                    return
                number = self.next_line
                self.next_line = number + 1
                if len(line) > MAX_LINE:
                    self.skip_rest_of_line()
                    taken.append((number, line[:SHOWN]))
                    raise RecordTooLong(f"a line longer than {MAX_LINE // 1024 // 1024} MB")
            taken.append((number, line))
            if len(taken) > MAX_RECORD_LINES:
                raise RecordTooLong(
                    f"a quoted value runs over more than {MAX_RECORD_LINES} lines: probably "
                    "a quote that is never closed"
                )
            yield line

    def skip_rest_of_line(self) -> None:
        while (rest := self.lines.readline(MAX_LINE)) and not rest.endswith(("\n", "\r")):
            pass

    def bad(self, reason: str) -> Record:
        """Reject the record being read at its first line; its other lines are read again."""
        taken = list(self.taken)
        self.taken.clear()
        if not taken:  # (an error before any line: nothing to reject)
            return Record(self.next_line, None, reason, "")
        self.again.extendleft(reversed(taken[1:]))
        number, line = taken[0]
        return Record(number, None, reason, line.rstrip("\r\n")[:SHOWN])


def delimiter_of(header: str) -> str:
    """The delimiter a file's header row (its first line) uses: the one it holds most of
    outside quotes ("Last, First";Cell is a semicolon's), a comma if none."""
    return max(DELIMITERS, key=QUOTED.sub("", header).count)  # (the first of equals: a comma)


QUOTED = re.compile(r'"[^"]*(?:"|$)')  # a quoted value, or one the first line leaves open


def describe(error: csv.Error) -> str:
    """The csv module's complaint, in words for an organizer."""
    message = str(error)
    if "field larger than field limit" in message:
        return f"a value longer than {MAX_FIELD // 1024} KB"
    if "unexpected end of data" in message or "EOF" in message:
        return "a quoted value is never closed: the file ends inside it"
    if "expected after" in message:
        return "a quote inside a value (write it twice, or quote the whole value)"
    return f"the record cannot be read as CSV ({message})"
