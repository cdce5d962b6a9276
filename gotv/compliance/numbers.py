"""Which numbers gotv texts: US mobiles-or-landlines of the 50 states and DC, and, when the
organization chooses, of the US territories. Every other number is refused with its reason.

`check` is the policy, written once. The import asks it of every row (through the fast
`gotv.lists.fastphone.Normalizer`, which must give exactly its answer), the volunteer's click
and the outbox's last gate ask `check_stored` of the number they are about to text, and the API
reports its reasons. Digits of any Unicode script (full-width ２０２, Arabic-Indic ٢٠٢,
Devanagari २०२ ...) are read as digits: a number is always stored as ASCII E.164, so an
opt-out recorded from the ASCII number matches the contact.

In the order they are checked (the first that applies names the reason):

1. ``empty``, ``rounded``, ``not_a_number``, ``invalid``: nothing typed; a spreadsheet rounded
   it (``2.12555E+09``: the digits it dropped are gone); phonenumbers cannot read it; it reads
   it but says no such number can exist. A number a spreadsheet wrote whole as a number
   (``2.125550299E+09``, ``2125550299.0``) is read as its digits, and a leading 00 as "+".
2. ``foreign``: a country code other than +1.
3. ``canada``, ``caribbean``: the North American plan outside the United States (Canada, and
   the Caribbean and Atlantic members: Jamaica, the Dominican Republic, the Bahamas, Bermuda ...).
4. ``toll_free``, ``premium_rate``, ``non_geographic``: 800-series, 900, and the personal and
   other non-geographic numbers (500, 52x, 53x ...), which are not a person's phone.
5. ``fictional``: 555-0100 to 555-0199 in any area code, reserved for films and examples.
6. ``us_territory``: Puerto Rico, the US Virgin Islands, Guam, the Northern Mariana Islands
   and American Samoa, unless the organization texts the territories.
7. ``landline``: where the numbering plan says the number is a landline or pager (never
   the case for US numbers, whose landlines and mobiles share their ranges: there the carrier's
   answer, error 21614, blocks the number instead; see `carrier_errors`).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from phonenumbers import PhoneNumberType

US = "US"
US_TERRITORIES = frozenset({"PR", "VI", "GU", "MP", "AS"})
FICTIONAL_EXCHANGE = "555"  # with a line number 0100-0199
E164_US_LENGTH = 12  # "+1" and ten digits
# A phone column a spreadsheet took for numbers: Excel's scientific notation (2.125550299E+09),
# or a float's decimals (2125550299.0, as pandas writes a column with a blank in it).
SPREADSHEET_NUMBER = re.compile(
    r"\s*(?:(?P<lead>[0-9])(?:\.(?P<rest>[0-9]*))?[eE]\+?(?P<power>[0-9]{1,2})"
    r"|(?P<whole>[0-9]+)\.0+)\s*",
    re.ASCII,
)


class Reason(enum.StrEnum):
    """Why a number is not texted; its value is stored with a rejected import row."""

    EMPTY = "empty"
    ROUNDED = "rounded"
    NOT_A_NUMBER = "not_a_number"
    INVALID = "invalid"
    FOREIGN = "foreign"
    CANADA = "canada"
    CARIBBEAN = "caribbean"
    TOLL_FREE = "toll_free"
    PREMIUM_RATE = "premium_rate"
    NON_GEOGRAPHIC = "non_geographic"
    FICTIONAL = "fictional"
    US_TERRITORY = "us_territory"
    LANDLINE = "landline"

    @property
    def explanation(self) -> str:
        """The reason in words an organizer understands."""
        return EXPLANATIONS[self]


EXPLANATIONS = {
    Reason.EMPTY: "no phone number",
    Reason.ROUNDED: "a number a spreadsheet rounded (like 2.12555E+09): format the column as text",
    Reason.NOT_A_NUMBER: "not a phone number",
    Reason.INVALID: "not a valid phone number",
    Reason.FOREIGN: "a number outside the United States",
    Reason.CANADA: "a Canadian number",
    Reason.CARIBBEAN: "a Caribbean or Atlantic number (+1, outside the US)",
    Reason.TOLL_FREE: "a toll-free number",
    Reason.PREMIUM_RATE: "a premium-rate number",
    Reason.NON_GEOGRAPHIC: "a personal or non-geographic number",
    Reason.FICTIONAL: "a fictional 555-01xx number",
    Reason.US_TERRITORY: "a US territory number (your organization does not text them)",
    Reason.LANDLINE: "a landline or pager",
}
NON_GEOGRAPHIC_TYPES = frozenset(
    {
        PhoneNumberType.PERSONAL_NUMBER,
        PhoneNumberType.UAN,
        PhoneNumberType.SHARED_COST,
        PhoneNumberType.VOICEMAIL,
    }
)
LANDLINE_TYPES = frozenset({PhoneNumberType.FIXED_LINE, PhoneNumberType.PAGER})


@dataclass(frozen=True)
class Verdict:
    """The policy's answer: the number as ASCII E.164 ("" when it cannot be read), and why it
    is not texted (None: it is)."""

    cell: str
    reason: Reason | None = None

    @property
    def textable(self) -> bool:
        return self.reason is None

    @property
    def explanation(self) -> str:
        return self.reason.explanation if self.reason else ""


@dataclass(frozen=True)
class Facts:
    """What phonenumbers says about a number: all the policy reads of it."""

    country_code: int
    national: str  # the national significant number, ASCII digits
    valid: bool
    region: str | None
    kind: int  # a phonenumbers.PhoneNumberType


def facts_of(number: phonenumbers.PhoneNumber) -> Facts:
    valid = phonenumbers.is_valid_number(number)
    return Facts(
        country_code=number.country_code or 0,
        national=phonenumbers.national_significant_number(number),
        valid=valid,
        region=phonenumbers.region_code_for_number(number) if valid else None,
        kind=phonenumbers.number_type(number) if valid else PhoneNumberType.UNKNOWN,
    )


def decide(facts: Facts, territories: bool) -> Reason | None:
    """Why a parsed number is not texted (None: it is). The order is the module docstring's."""
    if not facts.valid:
        return Reason.INVALID
    if facts.country_code != 1:
        return Reason.FOREIGN
    if facts.region == "CA":
        return Reason.CANADA
    if facts.region != US and facts.region not in US_TERRITORIES:
        return Reason.CARIBBEAN
    if facts.kind == PhoneNumberType.TOLL_FREE:
        return Reason.TOLL_FREE
    if facts.kind == PhoneNumberType.PREMIUM_RATE:
        return Reason.PREMIUM_RATE
    if facts.kind in NON_GEOGRAPHIC_TYPES:
        return Reason.NON_GEOGRAPHIC
    if is_fictional(facts.national):
        return Reason.FICTIONAL
    if facts.region in US_TERRITORIES and not territories:
        return Reason.US_TERRITORY
    if facts.kind in LANDLINE_TYPES:
        return Reason.LANDLINE
    return None


def is_fictional(national: str) -> bool:
    """555-0100 to 555-0199 (NANP's numbers for fiction), in any area code."""
    return national[3:6] == FICTIONAL_EXCHANGE and national[6:8] == "01"


def check(raw: str, region: str = US, territories: bool = False) -> Verdict:
    """The policy for a number as typed (any format, digits of any script): may it be texted?

    `region` is where a number without a country code is read; `territories` is whether the
    organization texts the US territories.
    """
    if not raw.strip():
        return Verdict("", Reason.EMPTY)
    written = spreadsheet_digits(raw)
    if written == "":
        return Verdict("", Reason.ROUNDED)
    try:
        number = phonenumbers.parse(written or international(raw), region)
    except phonenumbers.NumberParseException:
        return Verdict("", Reason.NOT_A_NUMBER)
    facts = facts_of(number)
    cell = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Verdict(cell, decide(facts, territories))


def international(raw: str) -> str:
    """`raw` with a leading 00, the international prefix of most of the world, read as "+"
    (001 212 555 0299 is +1 212 555 0299): no national number of the North American plan
    starts with 0, and phonenumbers knows only 011 as the US's international prefix."""
    typed = raw.lstrip()
    return "+" + typed[2:] if typed.startswith("00") else raw


def spreadsheet_digits(raw: str) -> str | None:
    """The digits of a number as a spreadsheet writes one ("2125550299" for "2.125550299E+09"
    or "2125550299.0"); "" when it rounded them away ("2.12555E+09": which digits were there
    cannot be known, and a guess would text someone else); None for anything else."""
    written = SPREADSHEET_NUMBER.fullmatch(raw)
    if written is None:
        return None
    if written["whole"]:
        return written["whole"]
    rest, power = written["rest"] or "", int(written["power"])
    if len(rest) > power:
        return None  # a fraction (1.5E+00): no phone number, as phonenumbers will say
    return written["lead"] + rest if len(rest) == power else ""


def normalize(raw: str, region: str = US) -> Verdict:
    """Any real number as ASCII E.164, textable or not: for opt-outs, which gotv records for
    every number (an opt-out of a Canadian or a territory number must hold if the policy or the
    organization's choice ever changes). Only empty, unreadable and invalid input is refused."""
    verdict = check(raw, region, territories=True)
    if verdict.reason in (Reason.EMPTY, Reason.ROUNDED, Reason.NOT_A_NUMBER, Reason.INVALID):
        return verdict
    return Verdict(verdict.cell)


def check_stored(cell: str, territories: bool) -> Reason | None:
    """The policy for a number already stored (the click and the last gate ask it): None when
    it may be texted. Anything but canonical ASCII E.164 is invalid, so a number stored as typed
    before numbers were normalized can never slip past an opt-out recorded in ASCII."""
    return _stored_facts(cell, territories)


@lru_cache(maxsize=65536)
def _stored_facts(cell: str, territories: bool) -> Reason | None:
    # Cached: a conversation's replies go to the same number again and again.
    if not cell.isascii():
        return Reason.INVALID
    verdict = check(cell, US, territories)
    if verdict.cell != cell:
        return verdict.reason or Reason.INVALID
    return verdict.reason
