"""`numbers.check`, fast: exactly its answers, with phonenumbers called once per prefix.

The textable-number policy (`gotv.compliance.numbers.check`) parses every number with
phonenumbers, which costs tens of microseconds; a voter file has millions. Digits of any
Unicode script are first read as ASCII digits (phonenumbers reads them so too). A number then
typed with only ASCII digits, spaces and ``( ) - . /`` (and perhaps a leading ``+``) parses to
the same number whatever the punctuation. For a ten-digit North American number (country code
1) its validity, region and type depend only on its first few digits: `prefix_length` proves
how many by reading the phonenumbers metadata patterns of every NANP region, so one phonenumbers
call answers for every number sharing that prefix, and the policy (`numbers.decide`) is applied
to the facts with the number's own digits. Anything else (letters, extensions, other countries,
other punctuation, a spreadsheet's 2125550299.0) is answered by `numbers.check` itself, cached
on the exact text.
"""

from __future__ import annotations

import re
import re._parser as sre
import sys
import unicodedata
from collections.abc import Callable
from functools import cache
from typing import Any

import phonenumbers
from phonenumbers.phonemetadata import PhoneMetadata

from gotv.compliance import numbers
from gotv.compliance.numbers import Facts, Verdict

SIMPLE = re.compile(r" *\+?[0-9 ().\-/]{1,60}", re.ASCII)
NON_DIGITS = re.compile(r"[^0-9]")
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
CACHE_SIZE = 100_000  # texts cached beyond the NANP prefixes (each a few hundred bytes)


@cache
def ascii_digits() -> dict[int, str]:
    """str.translate's table from every Unicode decimal digit (category Nd) to ASCII."""
    return {
        code: str(unicodedata.digit(chr(code)))
        for code in range(128, sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Nd"
    }


class Normalizer:
    """`numbers.check(raw, region, territories)`, with what may be cached cached.

    One normalizer serves one import: its caches grow with the distinct prefixes it meets.
    """

    def __init__(self, region: str = numbers.US, territories: bool = False) -> None:
        self.region = region
        self.territories = territories
        self.nanp = phonenumbers.country_code_for_region(region) == 1
        self.by_prefix: dict[str, Facts] = {}
        self.by_text: dict[str, Verdict] = {}

    def __call__(self, raw: str) -> Verdict:
        """The policy's verdict on `raw`: its ASCII E.164 and why it is not texted, if not."""
        number = raw if raw.isascii() else raw.translate(ascii_digits())
        if SIMPLE.fullmatch(number) is None or not number.strip():
            return self._exact(raw)
        if "." in number and numbers.SPREADSHEET_NUMBER.fullmatch(number):
            return self._exact(raw)  # 2125550299.0: its ".0" is no digit of the number
        digits = NON_DIGITS.sub("", number)
        national = self._nanp_national(number, digits)
        if not national:
            return self._exact(raw)
        depth = prefix_length(national[:3])
        facts = self.by_prefix.get(national[:depth])
        if facts is None:
            facts = self.by_prefix[national[:depth]] = numbers.facts_of(
                phonenumbers.parse(raw, self.region)
            )
        mine = Facts(1, national, facts.valid, facts.region, facts.kind)
        return Verdict("+1" + national, numbers.decide(mine, self.territories))

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

    def _exact(self, raw: str) -> Verdict:
        verdict = self.by_text.get(raw)
        if verdict is None:
            verdict = numbers.check(raw, self.region, self.territories)
            if len(self.by_text) < CACHE_SIZE:
                self.by_text[raw] = verdict
        return verdict


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
