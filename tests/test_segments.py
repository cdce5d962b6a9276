"""Segment counting, Smart Encoding, cost estimates and merge fields that make texts dearer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from gotv.models import Contact, User
from gotv.texting import segments
from gotv.texting.segments import GSM7, UCS2

EMOJI = "🗳"  # outside the Basic Multilingual Plane: a surrogate pair, two UTF-16 units

TRICKY_BODIES = [
    pytest.param("", GSM7, 0, id="empty body: nothing to send"),
    pytest.param("a" * 160, GSM7, 1, id="160 GSM characters"),
    pytest.param("a" * 161, GSM7, 2, id="161 GSM characters"),
    pytest.param("a" * 153 * 2, GSM7, 2, id="two full 153-septet segments"),
    pytest.param("a" * 307, GSM7, 3, id="306 + 1"),
    pytest.param("€" * 80, GSM7, 1, id="80 euro signs are 160 septets"),
    pytest.param("€" * 81, GSM7, 2, id="81 euro signs are 162 septets"),
    pytest.param("a" * 152 + "{" + "a" * 152, GSM7, 3, id="extended char at the 153 boundary"),
    pytest.param("ó" * 70, UCS2, 1, id="70 UCS-2 characters"),
    pytest.param("ó" * 71, UCS2, 2, id="71 UCS-2 characters"),
    pytest.param("ó" * 69 + EMOJI, UCS2, 2, id="an emoji is two units: 71"),
    pytest.param("ó" * 66 + EMOJI + "ó" * 66, UCS2, 3, id="emoji at the 67 boundary"),
    pytest.param(EMOJI * 35, UCS2, 1, id="35 emoji are 70 units"),
    pytest.param("¿Votarás el martes?", UCS2, 1, id="Spanish with á"),
    pytest.param("El niño vota mañana, ¿y usted? ¡Sí!", UCS2, 1, id="í is not GSM"),
    pytest.param("El niño vota mañana. ¡Ánimo! ¿Y usted?", UCS2, 1, id="Á is not GSM"),
    pytest.param("Ñoño, Müller, Åse, Øystein, Élodie, Çelik, à è ì ò ù", GSM7, 1, id="GSM"),
    pytest.param("Françoise", UCS2, 1, id="lowercase ç is not GSM"),
    pytest.param("It’s “election day”", UCS2, 1, id="curly quotes"),
    pytest.param("Vote\u00a0today", UCS2, 1, id="a non-breaking space"),
    pytest.param("Use `backticks`", UCS2, 1, id="the backtick is not GSM"),
]


@pytest.mark.parametrize(("body", "encoding", "count"), TRICKY_BODIES)
def test_tricky_bodies_are_counted_like_twilio(body: str, encoding: str, count: int) -> None:
    counted = segments.count(body)

    assert (counted.encoding, counted.segments) == (encoding, count)
    assert segments.encoding(body) == encoding


def test_the_gsm_alphabet_has_127_characters_and_ten_extended_ones() -> None:
    assert len(segments.GSM7_BASIC) == 127  # 128 codes, one of them the escape
    assert len(segments.GSM7_EXTENDED) == 10


@pytest.mark.parametrize("letter", list("éÉèùìòàÇñÑüÜöÖäÄ¿¡"))
def test_letters_of_the_gsm_alphabet_keep_a_message_gsm7(letter: str) -> None:
    assert segments.encoding(f"Hola {letter}") == GSM7


@pytest.mark.parametrize("letter", list("áíóúÁÍÓÚçâêôãõëïŁ"))
def test_letters_outside_the_gsm_alphabet_force_ucs2(letter: str) -> None:
    assert segments.count(f"Hola {letter}").ucs2_characters == (letter,)


def test_an_extended_character_never_straddles_two_segments() -> None:
    body = "a" * 152 + "€" + "a" * 152  # 306 septets: two segments by division

    counted = segments.count(body)

    assert counted.units == 306
    assert counted.segments == 3


def test_an_extended_character_that_fits_stays_in_its_segment() -> None:
    assert segments.count("a" * 151 + "€" + "a" * 153).segments == 2


def test_an_emoji_never_straddles_two_segments() -> None:
    body = "ó" * 66 + EMOJI + "ó" * 66  # 134 units: two segments by division

    counted = segments.count(body)

    assert counted.units == 134
    assert counted.segments == 3


def test_a_single_segment_has_the_larger_limit_and_a_split_one_the_smaller() -> None:
    assert segments.count("a" * 160).per_segment == 160
    assert segments.count("a" * 161).per_segment == 153
    assert segments.count("ó" * 70).per_segment == 70
    assert segments.count("ó" * 71).per_segment == 67


def test_the_characters_that_forced_ucs2_are_named_once_each_in_order() -> None:
    counted = segments.count("It’s “our” day, isn’t it?")

    assert counted.ucs2_characters == ("’", "“", "”")


# --- Smart Encoding --------------------------------------------------------------------------


def test_smart_encoding_keeps_a_message_with_curly_quotes_in_one_gsm_segment() -> None:
    body = "It’s “election day” — polls close at 8… " + "a" * 100

    assert (segments.count(body).encoding, segments.count(body).segments) == (UCS2, 3)
    smart = segments.count(body, smart_encoding=True)
    assert (smart.encoding, smart.segments) == (GSM7, 1)


def test_smart_encoding_replaces_the_look_alikes_twilio_replaces() -> None:
    body = "«Hi»\u00a0it’s‘me’ – ok — ½ ＡＢ… "

    assert segments.smart_encode(body) == "\"Hi\" it's'me' - ok - 1/2 AB... "


def test_smart_encoding_leaves_a_message_that_stays_ucs2_as_written() -> None:
    body = f"It’s “election day” {EMOJI}…"

    assert segments.smart_encode(body) == body
    assert segments.count(body, smart_encoding=True) == segments.count(body)


def test_smart_encoding_does_not_strip_accents() -> None:
    assert segments.count("¿Votarás?", smart_encoding=True).encoding == UCS2


def test_every_smart_encoding_replacement_is_gsm7() -> None:
    assert all(segments.encoding(r) == GSM7 for r in segments.SMART_ENCODING.values())


# --- Estimates -------------------------------------------------------------------------------


def test_an_estimate_prices_exactly_the_messages_given() -> None:
    estimate = segments.estimate(["a" * 161, "b", "ó" * 71], Decimal("0.01"))

    assert (estimate.sampled, estimate.max_segments, estimate.segments) == (3, 2, 5)
    assert estimate.cost == Decimal("0.05")


def test_an_estimate_projects_the_sample_average_onto_all_recipients() -> None:
    sample = [segments.count("a" * 161), segments.count("b")]

    estimate = segments.estimate(sample, recipients=10_000)

    assert estimate.average_segments == Decimal("1.50")
    assert estimate.segments == 15_000
    assert estimate.cost == Decimal("124.50")  # 15,000 x $0.0083


def test_an_estimate_of_nothing_costs_nothing() -> None:
    estimate = segments.estimate([], recipients=0)

    assert (estimate.max_segments, estimate.segments, estimate.cost) == (0, 0, Decimal("0.00"))


# --- Merge fields ----------------------------------------------------------------------------

SCRIPT = "Hi {first_name} {last_name}, it's {texter_name} with Vote Together. " + "x" * 30
TEXTER = User(name="Val")


def voter(first_name: str, last_name: str = "Smith", **custom: str) -> Contact:
    return Contact(
        first_name=first_name, last_name=last_name, zip="", state="", custom_fields=custom
    )


def test_a_name_outside_gsm_is_blamed_for_switching_messages_to_ucs2() -> None:
    contacts = [voter("Maria"), voter("Zoë"), voter("Łukasz"), voter("José")]

    risks = segments.merge_field_risks(SCRIPT, contacts, TEXTER)

    assert [(r.field, r.messages, r.to_ucs2, r.values) for r in risks] == [
        ("first_name", 2, 2, ("Zoë", "Łukasz"))
    ]
    assert (risks[0].segments, risks[0].plain_segments) == (2, 1)


def test_a_curly_apostrophe_in_a_name_is_harmless_with_smart_encoding_only() -> None:
    contacts = [voter("Sean", "O’Brien")]

    plain = segments.merge_field_risks(SCRIPT, contacts, TEXTER)
    smart = segments.merge_field_risks(SCRIPT, contacts, TEXTER, smart_encoding=True)

    assert [(r.field, r.values) for r in plain] == [("last_name", ("O’Brien",))]
    assert smart == []


def test_extended_characters_in_a_custom_field_can_cost_an_extra_segment() -> None:
    script = "a" * 158 + "{pledge}"  # 161 septets, 160 with a plain value

    risks = segments.merge_field_risks(script, [voter("Ann", pledge="€5")], TEXTER)

    assert [(r.field, r.to_ucs2, r.segments, r.plain_segments) for r in risks] == [
        ("pledge", 0, 2, 1)
    ]


def test_an_emoji_in_a_ucs2_script_is_blamed_but_accented_names_are_not() -> None:
    script = "¿Votarás, {first_name}? " + "ó" * 54  # 66 units + the name

    risks = segments.merge_field_risks(script, [voter("Zoë" + EMOJI), voter("Zoë")], TEXTER)

    assert [(r.field, r.messages, r.to_ucs2) for r in risks] == [("first_name", 1, 0)]


def test_the_warning_names_the_field_the_values_and_the_cost() -> None:
    risk = segments.FieldRisk("first_name", 3, 3, ("Zoë",), segments=2, plain_segments=1)

    assert segments.describe(risk, 200) == (
        "3 of 200 sampled messages switch to UCS-2 because first_name contains ‘Zoë’:"
        " they cost 2 segments instead of 1."
    )


def test_the_warning_says_when_a_switch_to_ucs2_costs_nothing_yet() -> None:
    risk = segments.FieldRisk("last_name", 1, 1, ("Łukasz",), segments=1, plain_segments=1)

    assert segments.describe(risk, 5) == (
        "1 of 5 sampled messages switches to UCS-2 because last_name contains ‘Łukasz’:"
        " still 1 segment, but UCS-2 leaves room for 70 characters, not 160."
    )
