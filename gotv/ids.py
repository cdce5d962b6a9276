"""Ids as the database holds them: whole numbers from 0 to 2**31 - 1, in ASCII digits.

Every id that comes from outside (a URL, a query string, a form, a JSON body, a webhook) is
parsed here, once, so that nothing else meets "²" (a digit to str.isdigit(), not to int()),
"٣" (a digit to int()), "+5", " 5" or a number no INTEGER column can hold.
"""

from __future__ import annotations

import re
from typing import Any

# The columns are INTEGER: 32 bits, signed, on PostgreSQL (SQLite's hold more, PostgreSQL's
# never will), and ids start at 1.
MAX_ID = 2**31 - 1
DIGITS = re.compile(r"[0-9]{1,10}")


def parse(text: str | None) -> int | None:
    """The id `text` spells, or None for anything that is not one."""
    if text is None or not DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if value <= MAX_ID else None


def is_id(value: Any) -> bool:
    """Whether a value already parsed (from JSON, say) is an int that fits an id column;
    True and False are not numbers here."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID
