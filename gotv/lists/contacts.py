"""Voter lists: read a CSV, map its headers, normalize numbers and ZIPs, drop duplicates.

Plain functions with no Flask imports. Every row comes out either as a contact or as a rejected
row with its reason; nothing is dropped silently.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import phonenumbers
from phonenumbers import timezone as phone_timezone

from gotv.compliance import hours, numbers
from gotv.lists import records

ZIP_TABLE = Path(__file__).parents[1] / "data" / "zips.csv"
STANDARD_FIELDS = ("cell", "first_name", "last_name", "zip")
MAX_CANDIDATE_ZONES = 6
DUPLICATE_IN_FILE = "duplicate number in this file"

# Header spellings seen in VAN/EveryAction, L2, TargetSmart (with or without its "vb." or
# "ts." table prefix) and hand-made sheets in English and Spanish, compared as `header_key`
# makes them: lower case, accents dropped, nothing but letters and digits.
HEADER_ALIASES = {
    "cell": (
        # Columns that say "cell" or "mobile" win over a plain "phone", often a landline.
        "cell",
        "cellphone",
        "cellphonenumber",
        "cellnumber",
        "cellular",
        "mobile",
        "mobilephone",
        "mobilenumber",
        "mobilephonenumber",
        "wireless",
        "wirelessphone",
        "votertelephonescellphoneformatted",
        "votertelephonescellphone",
        "tsmartcellphone",
        "tstsmartcellphone",
        "vbtsmartcellphone",
        "vbvoterbasephonewireless",
        "celular",
        "movil",
        "telefonocelular",
        "telefonomovil",
        "phone",
        "phonenumber",
        "telephone",
        "telephonenumber",
        "tel",
        "number",
        "vbphone",
        "vbvoterbasephone",
        "telefono",
    ),
    "first_name": (
        "firstname",
        "first",
        "givenname",
        "votersfirstname",
        "fname",
        "vbtsmartfirstname",
        "nombre",
    ),
    "last_name": (
        "lastname",
        "last",
        "surname",
        "familyname",
        "voterslastname",
        "lname",
        "vbtsmartlastname",
        "apellido",
        "apellidos",
    ),
    "zip": (
        "zip",
        "zip5",
        "zipcode",
        "postalcode",
        "postcode",
        "residenceaddresseszip",
        "vtrzip",
        "vbtsmartzip",
        "vbvoterbasezip",
        "codigopostal",
    ),
}


@dataclass
class ParsedContact:
    cell: str
    line: int = 0
    first_name: str = ""
    last_name: str = ""
    zip: str = ""
    state: str = ""
    rule_states: str = ""
    time_zones: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)


@dataclass
class RejectedRow:
    line: int
    row: dict[str, str]
    reason: str


@dataclass
class ParsedList:
    contacts: list[ParsedContact] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    custom_field_names: list[str] = field(default_factory=list)


class InvalidPhone(ValueError):
    """The number may not be texted (or is no number at all); the message says why and
    `reason` is the policy's code (`numbers.Reason`)."""

    def __init__(self, reason: numbers.Reason) -> None:
        super().__init__(reason.explanation)
        self.reason = reason


class UnreadableList(ValueError):
    """The file is not a CSV we can read (no header, no phone column)."""


def decode(data: bytes) -> str:
    """Decode an uploaded file: UTF-16 with BOM, else UTF-8 (with or without BOM) and
    Windows-1252 where it is not UTF-8 (`records.MIXED`)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16")
    return data.decode("utf-8-sig", errors=records.MIXED)


def header_key(header: str) -> str:
    """ "Teléfono Móvil" -> "telefonomovil": how a header is compared with HEADER_ALIASES."""
    unaccented = unicodedata.normalize("NFKD", header.lower())
    return re.sub(r"[^a-z0-9]", "", unaccented)


def map_headers(headers: list[str]) -> dict[str, str]:
    """Map each standard field to the header naming it, preferring the earlier aliases.

    So a VAN export with both "Phone" (often a landline) and "CellPhone" texts the cell.
    The headers not mapped become custom fields.
    """
    by_key = {header_key(header): header for header in reversed(headers)}
    mapping: dict[str, str] = {}
    for name, aliases in HEADER_ALIASES.items():
        for alias in aliases:
            header = by_key.get(alias)
            if header is not None and header not in mapping.values():
                mapping[name] = header
                break
    return mapping


def custom_field_name(header: str) -> str:
    """A merge-tag-safe name for a column: lower case, words joined by underscores."""
    name = re.sub(r"[^a-z0-9]+", "_", header.strip().lower()).strip("_")
    # A merge tag cannot start with a digit: "2024 Voted" becomes {_2024_voted}.
    return "_" + name if name[:1].isdigit() else name


def read_list(
    data: bytes, region: str = "US", territories: bool = False, any_number: bool = False
) -> ParsedList:
    """Parse a voter list, deduplicating by normalized cell number.

    Numbers are held to the textable-number policy (`numbers.check`; `territories`: whether
    the organization texts the US territories), or with `any_number` (a list of opt-outs)
    only to being a real number.

    :raise UnreadableList: when the file has no header row or no phone column.
    """
    text = decode(data)
    delimiter = records.delimiter_of(next(iter(io.StringIO(text, newline="")), ""))
    reader = iter(records.Records(io.StringIO(text, newline=""), delimiter))
    header = next(reader, None)
    columns = header.values if header is not None and header.values is not None else []
    headers = [h for h in columns if h]
    mapping = map_headers(headers)
    if "cell" not in mapping:
        raise UnreadableList("no phone column found (expected a header like 'cell' or 'phone')")
    custom = {h: custom_field_name(h) for h in headers if h not in mapping.values()}
    parsed = ParsedList(custom_field_names=[n for n in custom.values() if n])
    seen: set[str] = set()
    for line, row, bad in _rows(reader, columns):
        if bad:
            parsed.rejected.append(RejectedRow(line, row, bad))
            continue
        try:
            contact = parse_row(row, mapping, custom, region, territories, any_number)
            contact.line = line
        except InvalidPhone as error:
            parsed.rejected.append(RejectedRow(line, row, str(error)))
            continue
        if contact.cell in seen:
            parsed.rejected.append(RejectedRow(line, row, DUPLICATE_IN_FILE))
            continue
        seen.add(contact.cell)
        parsed.contacts.append(contact)
    return parsed


def _rows(
    reader: Iterator[records.Record], headers: list[str]
) -> Iterator[tuple[int, dict[str, str], str]]:
    """(line, the record by header, "") for each non-blank record; (line, its text, the reason)
    for one that cannot be read."""
    for record in reader:
        if record.values is None:
            yield record.line, {"line": record.text}, record.reason
            continue
        clean = {k: v.strip() for k, v in zip(headers, record.values, strict=False) if k}
        if any(clean.values()):
            yield record.line, clean, ""


def parse_row(
    row: dict[str, str],
    mapping: dict[str, str],
    custom: dict[str, str],
    region: str,
    territories: bool = False,
    any_number: bool = False,
) -> ParsedContact:
    """Turn one CSV row into a contact. :raise InvalidPhone: when its number is unusable."""
    raw = row.get(mapping["cell"], "")
    cell = normalize_phone(raw, region) if any_number else textable_phone(raw, region, territories)
    zip5, state, zones = locate(row.get(mapping.get("zip", ""), ""), cell)
    rule_states = " ".join(sorted({state, area_code_state(cell)} - {""}))
    return ParsedContact(
        cell=cell,
        first_name=tidy_name(row.get(mapping.get("first_name", ""), "")),
        last_name=tidy_name(row.get(mapping.get("last_name", ""), "")),
        zip=zip5,
        state=state,
        rule_states=rule_states,
        time_zones=zones,
        custom_fields={name: row.get(h, "") for h, name in custom.items() if name},
    )


def normalize_phone(raw: str, region: str = "US") -> str:
    """Any real number as ASCII E.164, textable or not (for opt-outs), extensions dropped.

    :raise InvalidPhone: when it is empty, not a number or not a valid one.
    """
    verdict = numbers.normalize(raw, region)
    if verdict.reason:
        raise InvalidPhone(verdict.reason)
    return verdict.cell


def textable_phone(raw: str, region: str = "US", territories: bool = False) -> str:
    """`raw` as ASCII E.164 when the textable-number policy allows texting it.

    :raise InvalidPhone: with the policy's reason otherwise.
    """
    verdict = numbers.check(raw, region, territories)
    if verdict.reason:
        raise InvalidPhone(verdict.reason)
    return verdict.cell


def tidy_name(name: str) -> str:
    """Trim and collapse spaces; capitalize names typed all in upper or lower case."""
    name = " ".join(name.split())
    if name.isupper() or name.islower():
        return name.title()
    return name


def repair_zip(raw: str) -> str:
    """Five-digit ZIP from ZIP+4 or from a number a spreadsheet stripped of leading zeros."""
    digits = re.sub(r"\D", "", raw.split("-")[0])
    if not digits or len(digits) > 5 and len(digits) != 9:
        return ""
    return digits[:5] if len(digits) == 9 else digits.zfill(5)


def locate(raw_zip: str, cell: str) -> tuple[str, str, str]:
    """(ZIP5, state, time zones): the ZIP's zone and the number's area code's, both
    (`hours.combine_zones`), since where a person is is uncertain."""
    zip5 = repair_zip(raw_zip)
    state, zone = zip_info(zip5) if zip5 else ("", "")
    return zip5, state, hours.combine_zones(zone, phone_zones(cell))


def area_code_state(cell: str) -> str:
    """The state a US number's area code belongs to, or '' (non-US, toll-free, ambiguous).

    Florida and Oklahoma presume an in-state area code means an in-state resident, so their
    quiet-hour laws follow the number as well as the ZIP.
    """
    if not cell.startswith("+1") or len(cell) != 12:
        return ""
    return area_code_states().get(cell[2:5], "")


@cache
def area_code_states() -> dict[str, str]:
    """Area code -> the state most of its ZIP codes are in, from the zipcodes data set."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _zip, state, _zone, area_codes in zip_rows():
        for area_code in area_codes.split():
            counts[area_code][state] += 1
    return {code: states.most_common(1)[0][0] for code, states in counts.items()}


def zip_info(zip5: str) -> tuple[str, str]:
    """(state, IANA zone) for a five-digit ZIP, or empty strings when unknown."""
    return zip_table().get(zip5, ("", ""))


@cache
def zip_table() -> dict[str, tuple[str, str]]:
    """ZIP -> (state, IANA zone), built once from ZIP_TABLE."""
    return {zip5: (state, zone) for zip5, state, zone, _codes in zip_rows()}


def zip_rows() -> list[list[str]]:
    """The rows of ZIP_TABLE: zip, state, timezone, area codes (space-separated)."""
    with ZIP_TABLE.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        return list(reader)


def phone_zones(cell: str) -> str:
    """Every IANA zone the number's area code may be in (space-separated), or '' if unknown."""
    zones = [
        zone
        for zone in phone_timezone.time_zones_for_number(phonenumbers.parse(cell))
        if zone != "Etc/Unknown"
    ]
    # Toll-free and non-geographic numbers list every zone in the plan: treat them as unknown.
    return " ".join(zones) if len(zones) <= MAX_CANDIDATE_ZONES else ""
