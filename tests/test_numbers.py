"""The textable-number policy: which numbers gotv texts, why it refuses the others, and the
fast normalizer of imports giving exactly the policy's answer for every input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gotv.compliance import numbers
from gotv.compliance.numbers import Reason
from gotv.lists.fastphone import Normalizer, ascii_digits, prefix_length

# --- The policy, one class of number at a time ---------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0299",  # New York
        "+1 907 555 0299",  # Alaska
        "808-555-0299",  # Hawaii
        "202.456.1111",  # DC
        "1 (213) 555-7890",  # California, with the national prefix
        "001 212 555 0299",  # with the international prefix of Europe and most of the world
        "011 1 212 555 0299",  # with the US's own
    ],
)
def test_a_number_of_the_fifty_states_or_dc_is_texted(raw: str) -> None:
    verdict = numbers.check(raw)

    assert verdict.textable
    assert verdict.cell.startswith("+1") and verdict.cell.isascii()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        # Foreign mobiles and landlines: refused as foreign, whatever their type.
        ("+44 7911 123456", Reason.FOREIGN),
        ("+33 6 12 34 56 78", Reason.FOREIGN),
        ("+52 55 1234 5678", Reason.FOREIGN),
        ("+44 20 7123 4567", Reason.FOREIGN),
        ("0044 20 7123 4567", Reason.FOREIGN),
        ("+91 98765 43210", Reason.FOREIGN),
        # Canada, by any of its area codes.
        ("+1 416 555 0299", Reason.CANADA),
        ("(604) 555-0299", Reason.CANADA),
        ("514-555-0299", Reason.CANADA),
        # The Caribbean and Atlantic members of the North American plan.
        ("+1 876 555 0299", Reason.CARIBBEAN),
        ("+1 809 555 0299", Reason.CARIBBEAN),
        ("+1 242 359 1234", Reason.CARIBBEAN),
        ("+1 441 295 1234", Reason.CARIBBEAN),
        # Numbers that are not a person's phone.
        ("800-555-0299", Reason.TOLL_FREE),
        ("(888) 555-0299", Reason.TOLL_FREE),
        ("1-900-555-0299", Reason.PREMIUM_RATE),
        ("500-555-0299", Reason.NON_GEOGRAPHIC),
        ("521-555-0299", Reason.NON_GEOGRAPHIC),
        # The fictional block, in any area code, at both ends.
        ("212-555-0100", Reason.FICTIONAL),
        ("(305) 555-0150", Reason.FICTIONAL),
        ("+1 907 555 0199", Reason.FICTIONAL),
        # Nothing, no number, no such number.
        ("", Reason.EMPTY),
        ("   ", Reason.EMPTY),
        ("2.12555E+09", Reason.ROUNDED),  # a spreadsheet dropped the last four digits
        ("2E+09", Reason.ROUNDED),
        ("call me", Reason.NOT_A_NUMBER),
        ("555-12", Reason.INVALID),
        ("212-555-02999", Reason.INVALID),
        ("+1 999 555 0299", Reason.INVALID),
    ],
)
def test_every_other_number_is_refused_with_its_own_reason(raw: str, reason: Reason) -> None:
    verdict = numbers.check(raw)

    assert verdict.reason == reason
    assert verdict.explanation == reason.explanation != ""


def test_the_block_next_to_the_fictional_one_is_a_real_number() -> None:
    assert numbers.check("212-555-0200").textable
    assert numbers.check("212-555-0099").textable


@pytest.mark.parametrize(
    "raw", ["+1 787 555 0299", "939-555-0299", "+1 340 555 0299", "671-555-0299", "670-555-0299"]
)
def test_the_us_territories_are_texted_only_when_the_organization_chooses(raw: str) -> None:
    assert numbers.check(raw).reason == Reason.US_TERRITORY
    assert numbers.check(raw, territories=True).textable


@pytest.mark.parametrize(
    "raw",
    [
        "２０２４５６１１１１",  # full-width
        "٢٠٢٤٥٦١١١١",  # Arabic-Indic
        "۲۰۲-۴۵۶-۱۱۱۱",  # extended Arabic-Indic (Persian, Urdu)
        "(२०२) ४५६-११११",  # Devanagari
        "+১ ২০২ ৪৫৬ ১১১১",  # Bengali
        "๒๐๒.๔๕๖.๑๑๑๑",  # Thai
        "202-４５６-1111",  # mixed
    ],
)
def test_digits_of_any_script_become_ascii_e164(raw: str) -> None:
    assert numbers.check(raw) == numbers.Verdict("+12024561111")
    assert Normalizer()(raw) == numbers.Verdict("+12024561111")


def test_every_unicode_decimal_digit_is_mapped_to_its_ascii_digit() -> None:
    table = ascii_digits()

    assert len(table) >= 600  # 60-odd scripts of ten digits
    assert {"０".translate(table), "٩".translate(table), "𝟘".translate(table)} == {"0", "9"} | {"0"}


def test_opt_outs_accept_any_real_number_and_store_it_in_ascii() -> None:
    assert numbers.normalize("+1 416 555 0299") == numbers.Verdict("+14165550299")
    assert numbers.normalize("＋４４ ２０ ７１２３ ４５６７") == numbers.Verdict("+442071234567")
    assert numbers.normalize("555-12").reason == Reason.INVALID
    assert numbers.normalize("2.125550299E+09") == numbers.Verdict("+12125550299")
    assert numbers.normalize("2.12555E+09").reason == Reason.ROUNDED


@pytest.mark.parametrize(
    ("cell", "reason"),
    [
        ("+12125550299", None),
        ("+14165550299", Reason.CANADA),
        ("+17875550299", Reason.US_TERRITORY),
        ("+12125550150", Reason.FICTIONAL),
        ("+1２１２５５５０２９９", Reason.INVALID),  # stored as typed before this policy
        ("2125550299", Reason.INVALID),  # not E.164
    ],
)
def test_a_stored_number_is_held_to_the_policy_at_the_send_paths(
    cell: str, reason: Reason | None
) -> None:
    assert numbers.check_stored(cell, territories=False) == reason


# --- The fast normalizer: exactly the policy's answer -------------------------------------

# One cache for the whole run, as one import shares it across a file: a wrong answer cached
# for one number's prefix shows up on a later example.
SHARED = {False: Normalizer("US", territories=False), True: Normalizer("US", territories=True)}
SCRIPTS = [0x30, 0xFF10, 0x660, 0x6F0, 0x966, 0x9E6, 0xE50, 0x1040, 0x1D7CE]  # zero of each
AREA_CODES = [
    "212", "213", "305", "907", "808", "202",  # states and DC
    "416", "604", "867",  # Canada
    "876", "809", "242", "441",  # Caribbean, Atlantic
    "787", "939", "340", "671", "670", "684",  # territories
    "800", "888", "900", "500", "521", "533",  # toll-free, premium, personal
    "999", "211", "100", "011",  # not area codes
]  # fmt: skip
FORMATS = [
    "{a}{b}{c}",
    "{a}-{b}-{c}",
    "({a}) {b}-{c}",
    "{a}.{b}.{c}",
    "+1 {a} {b} {c}",
    "1-{a}-{b}-{c}",
    "1 ({a}) {b} {c}",
    "+1{a}{b}{c}",
    "+{a}{b}{c}",
    " {a} {b} {c} ",
    "{a}/{b}-{c}",
    "{a}-{b}-{c} x12",
    "{a}-{b}-{c} ext. 9",
    "1-{a}-{b}-{c}\t",
    "{a}\u00a0{b}\u00a0{c}",
    "＋1 {a} {b} {c}",
]


def in_script(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() and c.isascii() else c for c in text)


@st.composite
def typed_numbers(draw: st.DrawFn) -> str:
    """A number as people type it: a real-looking one in some format and script, or junk."""
    kind = draw(st.sampled_from(["nanp", "nanp", "nanp", "foreign", "digits", "text"]))
    if kind == "text":
        return draw(st.text(alphabet=st.characters(codec="utf-8"), max_size=20))
    if kind == "digits":
        raw = draw(st.from_regex(r"\+?[0-9 ().\-/]{0,18}", fullmatch=True))
    elif kind == "foreign":
        country = draw(st.sampled_from(["44", "33", "52", "91", "49", "63", "234", "1"]))
        raw = "+" + country + " " + draw(st.from_regex(r"[0-9]{6,11}", fullmatch=True))
    else:
        exchange = draw(st.sampled_from(["555", "456", "234", "011", "911", "N"]))
        if exchange == "N":
            exchange = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
        line = draw(st.sampled_from(["01", "02", "00", "19", ""]))
        line += "".join(
            draw(
                st.lists(
                    st.sampled_from("0123456789"), min_size=4 - len(line), max_size=4 - len(line)
                )
            )
        )
        raw = draw(st.sampled_from(FORMATS)).format(
            a=draw(st.sampled_from(AREA_CODES)), b=exchange, c=line
        )
    return in_script(raw, draw(st.sampled_from(SCRIPTS)))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=typed_numbers(), territories=st.booleans())
@example(raw="２０２４５６１１１１", territories=False)
@example(raw="２０２４５６１１１", territories=False)  # invalid after a valid full-width one
@example(raw="٢٠٢٤٥٦١١١١", territories=False)
@example(raw="212-555-0100", territories=False)
@example(raw="212-555-0200", territories=False)
@example(raw="  ", territories=False)
@example(raw="()", territories=False)
@example(raw="2125550299.0", territories=False)
@example(raw="1212555029.0", territories=False)  # ten digits and ".0": not 212-555-0290
@example(raw="212555029.00", territories=False)
@example(raw="001 212 555 0299", territories=False)
@example(raw="0012125550299", territories=False)
def test_the_fast_normalizer_gives_exactly_the_policys_answer(raw: str, territories: bool) -> None:
    assert SHARED[territories](raw) == numbers.check(raw, "US", territories)


def test_the_prefix_depth_comes_from_the_metadata() -> None:
    assert prefix_length("212") == 4  # 212 + the first digit of the exchange
    assert 3 <= prefix_length() <= 10
