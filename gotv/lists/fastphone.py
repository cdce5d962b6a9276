"""`contacts.normalize_phone`, fast: the same answers, with phonenumbers called once per prefix.

A number typed with only digits, spaces and ``( ) - . /`` (and perhaps a leading ``+``) parses
to the same number whatever the punctuation, so results are cached on the digits. For North
American numbers (country code 1) the validity and type of a number depend only on its first
few digits: `prefix_length` proves how many by reading the phonenumbers metadata patterns of
every NANP region, so one phonenumbers call answers for every number sharing that prefix.
Anything else (letters, extensions, other countries) goes to `contacts.normalize_phone`.
"""

from __future__ import annotations

import re
import re._parser as sre
from collections.abc import Callable
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from gotv.lists import contacts

SIMPLE = re.compile(r"\s*\+?[\d\s().\-/]{1,60}")
NON_DIGITS = re.compile(r"\D")
# A trailing extension phonenumbers drops ("x12", "ext. 9", "extension 345").
EXTENSION = re.compile(r"(.*\d[\s).]*?)\s*(?:x|ext\.?|extension)\s*\d{1,6}\s*", re.IGNORECASE)
DESCS = (
    "general_desc",
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)
VALID = ""  # cached outcome for a good number; otherwise the reason's template

Outcome = str  # VALID, or a reason template with {raw} for the original text


class Normalizer:
    """Normalize phone numbers like `contacts.normalize_phone`, caching what may be cached.

    `__call__` returns (E.164, "") or ("", reason); the reason text is exactly the message of the
    `contacts.InvalidPhone` that `normalize_phone` would raise.
    """

    def __init__(self, region: str) -> None:
        self.region = region
        self.nanp = phonenumbers.country_code_for_region(region) == 1
        self.npa_depth: dict[str, int] = {}
        self.by_prefix: dict[str, Outcome] = {}
        self.by_digits: dict[str, tuple[str, Outcome]] = {}

    def __call__(self, raw: str) -> tuple[str, str]:
        """(E.164, "") for a textable number, else ("", the reason)."""
        number = raw
        if SIMPLE.fullmatch(number) is None:
            extension = EXTENSION.fullmatch(number)
            number = extension.group(1) if extension else ""
            if not number or SIMPLE.fullmatch(number) is None:
                return self._slow(raw)
        digits = NON_DIGITS.sub("", number)
        national = self._nanp_national(number, digits)
        if national:
            npa = national[:3]
            depth = self.npa_depth.get(npa) or self.prefix_for(npa)
            template = self.by_prefix.get(national[:depth])
            if template is None:
                template = self.by_prefix[national[:depth]] = outcome(raw, self.region)[1]
            if template == VALID:
                return "+1" + national, ""
            return "", template.format(raw=repr(raw))
        return self._by_digits(raw, ("+" if "+" in number else "") + digits)

    def _nanp_national(self, number: str, digits: str) -> str:
        """The 10-digit national number of a +1 number whose answer its prefix decides, or ""."""
        if not self.nanp:
            return ""
        size = len(digits)
        if size == 11 and digits[0] == "1":
            national = digits[1:]
        elif size == 10 and "+" not in number:
            national = digits
        else:
            return ""
        return national if national[0] > "1" else ""

    def _by_digits(self, raw: str, key: str) -> tuple[str, str]:
        cached = self.by_digits.get(key)
        if cached is None:
            cached = self.by_digits[key] = outcome(raw, self.region)
        cell, template = cached
        return (cell, "") if template == VALID else ("", template.format(raw=repr(raw)))

    def prefix_for(self, npa: str) -> int:
        depth = self.npa_depth.get(npa)
        if depth is None:
            depth = self.npa_depth[npa] = prefix_length(npa)
        return depth

    def _slow(self, raw: str) -> tuple[str, str]:
        try:
            return contacts.normalize_phone(raw, self.region), ""
        except contacts.InvalidPhone as error:
            return "", str(error)


def outcome(raw: str, region: str) -> tuple[str, Outcome]:
    """normalize_phone's answer for `raw`, as (E.164, VALID) or ("", reason template)."""
    try:
        return contacts.normalize_phone(raw, region), VALID
    except contacts.InvalidPhone as error:
        return "", str(error).replace("{", "{{").replace("}", "}}").replace(repr(raw), "{raw}")


def nanp_patterns() -> list[Any]:
    """Every NANP region's parsed metadata patterns (leading digits and number types)."""
    patterns = []
    for region in phonenumbers.region_codes_for_country_code(1):
        metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            raise ValueError(f"no phonenumbers metadata for {region}")
        texts = [metadata.leading_digits] + [
            getattr(getattr(metadata, name, None), "national_number_pattern", None)
            for name in DESCS
        ]
        patterns += [sre.parse(text) for text in texts if text]
    return patterns


@cache
def prefix_length(npa: str = "") -> int:
    """How many leading national digits decide validity and type of 10-digit NANP numbers.

    For numbers starting with `npa`: the deepest digit position any NANP region's metadata
    pattern constrains to less than "any digit", on the paths that `npa` does not rule out.
    """
    depth = [len(npa)]

    def mark(position: int) -> None:
        depth[0] = max(depth[0], position + 1)

    for pattern in _nanp_patterns():
        walk(pattern, {0}, mark, npa)
    return depth[0]


_nanp_patterns = cache(nanp_patterns)


def walk(items: Any, starts: set[int], mark: Callable[[int], None], known: str) -> set[int]:
    """Walk parsed regex items from the possible start positions; return the end positions.

    Positions inside `known` (the digits already fixed) are checked against it, so paths the
    known digits rule out die; constraints beyond it are reported through `mark`.
    :raise ValueError: for a construct this analysis does not understand (never guesses).
    """
    positions = set(starts)
    for op, arg in items:
        if not positions:
            break
        positions = step(str(op), arg, positions, mark, known)
    return positions


def step(
    name: str, arg: Any, positions: set[int], mark: Callable[[int], None], known: str
) -> set[int]:
    if name in ("LITERAL", "IN"):
        return char(name, arg, positions, mark, known)
    if name == "BRANCH":
        return set().union(*(walk(branch, positions, mark, known) for branch in arg[1]))
    if name == "SUBPATTERN":
        return walk(arg[-1], positions, mark, known)
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return repeat(arg, positions, mark, known)
    raise ValueError(f"unsupported regex construct {name}")


def char(
    name: str, arg: Any, positions: set[int], mark: Callable[[int], None], known: str
) -> set[int]:
    ends = set()
    for position in positions:
        if position < len(known):
            if matches(name, arg, known[position]):
                ends.add(position + 1)
            continue
        if not is_any_digit(name, arg):
            mark(position)
        ends.add(position + 1)
    return ends


def repeat(arg: Any, positions: set[int], mark: Callable[[int], None], known: str) -> set[int]:
    low, high, items = arg
    if high > 20:
        raise ValueError("unbounded repeat")
    ends = set(positions) if low == 0 else set()
    current = positions
    for count in range(1, high + 1):
        current = walk(items, current, mark, known)
        if count >= low:
            ends |= current
    return ends


def matches(name: str, arg: Any, digit: str) -> bool:
    """Whether a LITERAL or IN (class) item accepts the digit."""
    code = ord(digit)
    if name == "LITERAL":
        return bool(arg == code)
    hit = False
    for kind, value in arg:
        kind = str(kind)
        if kind == "LITERAL":
            hit = hit or value == code
        elif kind == "RANGE":
            hit = hit or value[0] <= code <= value[1]
        elif kind == "CATEGORY" and str(value) == "CATEGORY_DIGIT":
            hit = True
        else:
            raise ValueError(f"unsupported class item {kind}")
    return hit


def is_any_digit(name: str, arg: Any) -> bool:
    """Whether the item accepts every digit 0-9."""
    return all(matches(name, arg, digit) for digit in "0123456789")
