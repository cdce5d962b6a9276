"""Voter lists: numbers, ZIPs, names, headers, encodings and duplicates, then the import."""

from __future__ import annotations

import pytest

from gotv.lists.contacts import (
    InvalidPhone,
    ParsedContact,
    ParsedList,
    UnreadableList,
    locate,
    normalize_phone,
    read_list,
    repair_zip,
    textable_phone,
    tidy_name,
)
from gotv.texting import texts


def read(text: str, encoding: str = "utf-8") -> ParsedList:
    return read_list(text.encode(encoding))


def only_contact(parsed: ParsedList) -> ParsedContact:
    assert not parsed.rejected, parsed.rejected
    assert len(parsed.contacts) == 1, parsed.contacts
    return parsed.contacts[0]


# --- Phone numbers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "(212) 555-0299",
        "212.555.0299",
        "+1 212 555 0299",
        "1-212-555-0299",
        "2125550299",
        " 212 555 0299 ",
    ],
)
def test_a_us_number_in_any_common_format_becomes_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+12125550299"


@pytest.mark.parametrize("raw", ["212-555-0299 x123", "(212) 555-0299 ext. 5"])
def test_an_extension_is_dropped_from_the_number(raw: str) -> None:
    assert normalize_phone(raw) == "+12125550299"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "no phone number"),
        ("555-12", "not a valid phone number"),
        ("212-555-02999", "not a valid phone number"),
        ("call me", "not a phone number"),
    ],
)
def test_an_invalid_number_is_rejected_with_the_reason(raw: str, reason: str) -> None:
    with pytest.raises(InvalidPhone, match=reason):
        normalize_phone(raw)


@pytest.mark.parametrize("raw", ["800-555-0299", "(888) 555-0299"])
def test_a_toll_free_number_is_rejected_by_the_texting_policy(raw: str) -> None:
    with pytest.raises(InvalidPhone, match="a toll-free number"):
        textable_phone(raw)


def test_an_opt_out_may_name_any_real_number_even_one_never_texted() -> None:
    assert normalize_phone("800-555-0299") == "+18005550299"
    assert normalize_phone("+1 416 555 0299") == "+14165550299"


def test_a_row_with_an_invalid_number_comes_back_rejected_with_its_reason() -> None:
    parsed = read("first_name,phone\nAnn,555-12\nBob,800-555-0299\n")

    assert parsed.contacts == []
    assert [(r.line, r.row["first_name"]) for r in parsed.rejected] == [(2, "Ann"), (3, "Bob")]
    assert "not a valid phone number" in parsed.rejected[0].reason
    assert "a toll-free number" in parsed.rejected[1].reason


# --- ZIP codes and time zones --------------------------------------------------------------


@pytest.mark.parametrize(("raw", "zip5"), [("10001-1234", "10001"), ("100011234", "10001")])
def test_a_zip_plus_four_is_cut_to_five_digits(raw: str, zip5: str) -> None:
    assert repair_zip(raw) == zip5


@pytest.mark.parametrize(("raw", "zip5"), [("2101", "02101"), ("501", "00501")])
def test_a_zip_whose_leading_zeros_a_spreadsheet_ate_is_restored(raw: str, zip5: str) -> None:
    assert repair_zip(raw) == zip5


@pytest.mark.parametrize("raw", ["", "123456", "n/a"])
def test_a_zip_that_cannot_be_a_zip_is_dropped(raw: str) -> None:
    assert repair_zip(raw) == ""


def test_a_four_digit_zip_in_a_list_is_located_in_new_england() -> None:
    contact = only_contact(read("phone,zip\n212-555-0299,2108\n"))

    assert (contact.zip, contact.state, contact.time_zones) == (
        "02108",
        "MA",
        "America/New_York",
    )


@pytest.mark.parametrize(
    ("zip5", "state", "zone"),
    [
        ("10001", "NY", "America/New_York"),
        ("60601", "IL", "America/Chicago"),
        ("85001", "AZ", "America/Phoenix"),
        ("96813", "HI", "Pacific/Honolulu"),
    ],
)
def test_a_zip_gives_the_state_and_time_zone(zip5: str, state: str, zone: str) -> None:
    # The number is from New York: the ZIP's zone comes first, the area code's after the bar.
    expected = zone if zone == "America/New_York" else f"{zone} | America/New_York"

    assert locate(zip5, "+12125550299") == (zip5, state, expected)


def test_without_a_zip_the_area_code_gives_the_time_zone() -> None:
    contact = only_contact(read("phone\n(312) 555-0201\n"))

    assert (contact.zip, contact.state, contact.time_zones) == ("", "", "America/Chicago")


def test_an_unknown_zip_falls_back_to_the_area_code() -> None:
    assert locate("00000", "+16025550201") == ("00000", "", "America/Phoenix")


def test_an_area_code_spanning_zones_gives_every_candidate_zone() -> None:
    assert locate("", "+12085551234")[2] == "America/Boise America/Los_Angeles"


# --- Names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "tidy"),
    [
        ("MARIA", "Maria"),
        ("maria", "Maria"),
        ("  mary   ann ", "Mary Ann"),
        ("JOSÉ", "José"),
        ("DE LA CRUZ", "De La Cruz"),
    ],
)
def test_a_name_typed_all_in_one_case_is_capitalized(raw: str, tidy: str) -> None:
    assert tidy_name(raw) == tidy


@pytest.mark.parametrize("name", ["McDonald", "José", "DeShawn", "Peña"])
def test_a_name_in_mixed_case_is_kept_as_typed(name: str) -> None:
    assert tidy_name(name) == name


# --- Headers and custom fields -------------------------------------------------------------


def test_a_van_export_is_mapped() -> None:
    parsed = read(
        "VANID,FirstName,LastName,CellPhone,ZIP5\n101,MARIA,GARCIA,(212) 555-0299,10001\n"
    )

    contact = only_contact(parsed)
    assert (contact.first_name, contact.last_name, contact.cell, contact.zip) == (
        "Maria",
        "Garcia",
        "+12125550299",
        "10001",
    )


def test_an_l2_export_is_mapped() -> None:
    parsed = read(
        "Voters_FirstName,Voters_LastName,VoterTelephones_CellPhoneFormatted,"
        "Residence_Addresses_Zip\n"
        "James,Smith,(312) 555-0201,60601\n"
    )

    contact = only_contact(parsed)
    assert (contact.first_name, contact.last_name, contact.cell, contact.zip) == (
        "James",
        "Smith",
        "+13125550201",
        "60601",
    )
    assert parsed.custom_field_names == []


def test_a_plain_hand_made_list_is_mapped() -> None:
    contact = only_contact(read("first_name,phone,zip\nann,602-555-0201,85001\n"))

    assert (contact.first_name, contact.cell, contact.zip, contact.state) == (
        "Ann",
        "+16025550201",
        "85001",
        "AZ",
    )


def test_extra_columns_are_kept_as_custom_fields_with_merge_safe_names() -> None:
    parsed = read(
        "VANID,first_name,phone,Polling Place,Precinct #\n101,Ann,602-555-0201,Library,12\n"
    )

    assert parsed.custom_field_names == ["vanid", "polling_place", "precinct"]
    assert only_contact(parsed).custom_fields == {
        "vanid": "101",
        "polling_place": "Library",
        "precinct": "12",
    }


def test_a_custom_field_named_with_a_leading_digit_can_still_be_a_merge_tag() -> None:
    parsed = read("phone,2024 Voted\n602-555-0201,yes\n")

    (name,) = parsed.custom_field_names
    assert texts.merge_fields("{" + name + "}") == [name]
    assert only_contact(parsed).custom_fields == {name: "yes"}


# --- Encodings, line endings and delimiters ------------------------------------------------


def test_a_utf8_file_with_a_byte_order_mark_is_read() -> None:
    # The BOM sits in front of the first header; left there it would hide the phone column.
    contact = only_contact(read("phone,first_name\n602-555-0201,José\n", "utf-8-sig"))

    assert (contact.cell, contact.first_name) == ("+16025550201", "José")


UTF16_LIST = "phone,first_name\n602-555-0201,José\n"


@pytest.mark.parametrize(
    "data",
    [UTF16_LIST.encode("utf-16"), ("\ufeff" + UTF16_LIST).encode("utf-16-be")],
    ids=["little-endian", "big-endian"],
)
def test_a_utf16_file_with_a_byte_order_mark_is_read(data: bytes) -> None:
    contact = only_contact(read_list(data))

    assert (contact.cell, contact.first_name) == ("+16025550201", "José")


def test_a_windows_1252_file_keeps_its_accented_names() -> None:
    contact = only_contact(
        read("phone,first_name,last_name\n602-555-0201,Peña,O’Brien\n", "cp1252")
    )

    assert (contact.first_name, contact.last_name) == ("Peña", "O’Brien")


def test_crlf_line_endings_and_a_quoted_field_with_a_newline_are_read() -> None:
    parsed = read(
        'phone,first_name,notes\r\n602-555-0201,Ann,"Line one\r\nline two"\r\n'
        "602-555-0202,Bob,none\r\n"
    )

    assert [(c.first_name, c.custom_fields["notes"]) for c in parsed.contacts] == [
        ("Ann", "Line one\r\nline two"),
        ("Bob", "none"),
    ]
    assert parsed.rejected == []


def test_a_tab_separated_file_is_read() -> None:
    contact = only_contact(read("first_name\tphone\tzip\nAnn\t602-555-0201\t85001\n"))

    assert (contact.first_name, contact.cell, contact.zip) == ("Ann", "+16025550201", "85001")


# --- Rows ----------------------------------------------------------------------------------


def test_a_number_repeated_in_the_file_is_rejected_as_a_duplicate() -> None:
    parsed = read("first_name,phone\nAnn,602-555-0201\nBob,(602) 555-0201\n")

    assert [c.first_name for c in parsed.contacts] == ["Ann"]
    assert [(r.line, r.row["first_name"], r.reason) for r in parsed.rejected] == [
        (3, "Bob", "duplicate number in this file")
    ]


def test_blank_lines_and_empty_rows_are_skipped_without_a_rejection() -> None:
    parsed = read("first_name,phone\nAnn,602-555-0201\n\n,,\n   ,  \nBob,602-555-0202\n")

    assert [(c.line, c.first_name) for c in parsed.contacts] == [(2, "Ann"), (6, "Bob")]
    assert parsed.rejected == []


def test_a_file_without_a_phone_column_is_unreadable() -> None:
    with pytest.raises(UnreadableList, match="no phone column"):
        read("first_name,last_name,zip\nAnn,Lee,85001\n")


def test_an_empty_file_is_unreadable() -> None:
    with pytest.raises(UnreadableList):
        read_list(b"")


def test_it_texts_the_cell_column_when_a_list_also_has_a_plain_phone_column() -> None:
    parsed = read_list(b"Phone,CellPhone,FirstName\n212-555-0201,212-555-0299,Ana\n")

    assert parsed.contacts[0].cell == "+12125550299"
    assert parsed.contacts[0].custom_fields == {"phone": "212-555-0201"}


def test_quiet_hour_states_include_the_area_codes_state() -> None:
    parsed = read_list(b"cell,zip\n(305) 555-0201,10001\n(212) 555-0202,\n")

    miami_cell_in_new_york, no_zip = parsed.contacts
    assert (miami_cell_in_new_york.state, miami_cell_in_new_york.rule_states) == ("NY", "FL NY")
    assert (no_zip.state, no_zip.rule_states) == ("", "NY")


def test_an_unclosed_quote_in_an_opt_out_list_rejects_its_line_and_the_rest_is_read() -> None:
    parsed = read('phone,first_name\n"602-555-0201,Ann\n602-555-0202,Bob\n602-555-0203,Cy\n')

    assert [c.first_name for c in parsed.contacts] == ["Bob", "Cy"]
    assert [(r.line, r.reason) for r in parsed.rejected] == [
        (2, "a quoted value is never closed: the file ends inside it")
    ]
