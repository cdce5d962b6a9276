"""The organization's opt-out list: add, import, export, reverse; organizers only."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.compliance import optouts
from gotv.db import db
from gotv.models import AuditEvent, OptOut, Role, User
from tests.conftest import csrf_token, login
from tests.factories import make_org, make_user

CELL = "+12125550242"


def token(client: FlaskClient) -> str:
    return csrf_token(client.get("/opt-outs").get_data(as_text=True))


def cells() -> list[str]:
    return list(db.session.scalars(select(OptOut.cell).order_by(OptOut.cell)))


def test_an_organizer_adds_a_number_typed_any_way(client: FlaskClient, organizer: User) -> None:
    login(client, organizer)

    client.post("/opt-outs", data={"csrf_token": token(client), "cell": "(212) 555-0242"})

    opt_out = db.session.scalars(select(OptOut)).one()
    assert (opt_out.cell, opt_out.source, opt_out.user_id) == (CELL, "admin", organizer.id)


def test_a_number_typed_too_long_or_not_at_all_is_refused_out_loud(
    client: FlaskClient, organizer: User
) -> None:
    """Nothing was said: an organizer could leave believing the voter opted out."""
    login(client, organizer)

    for typed in ("(212) 555-0242, asked us to stop on the phone", ""):
        response = client.post(
            "/opt-outs", data={"csrf_token": token(client), "cell": typed}, follow_redirects=True
        )

        assert "Type the phone number to opt out (at most 40 characters)." in response.text
    assert cells() == []


def test_an_organizer_imports_opt_outs_from_a_csv(client: FlaskClient, organizer: User) -> None:
    login(client, organizer)
    optouts.record_opt_out(organizer.organization_id, CELL, "admin")
    csv = b"phone\n212-555-0242\n212.555.0299\nnot a number\n"

    response = client.post(
        "/opt-outs/import",
        data={"csrf_token": token(client), "numbers": (io.BytesIO(csv), "optouts.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )

    assert cells() == [CELL, "+12125550299"]
    assert (
        "1 numbers opted out; 1 were already; 1 rows could not be read: line 4: not a phone number."
        in response.text
    )


def test_an_opt_out_import_reads_semicolons_and_names_each_row_it_could_not_read(
    client: FlaskClient, organizer: User
) -> None:
    """A list saved by a European Excel (semicolons, Windows-1252), with a number mangled."""
    login(client, organizer)
    csv = "Nom;Phone\nZoë;212-555-0242\nAna;2.12555E+09\nZoë;212-555-0242\n".encode("cp1252")

    response = client.post(
        "/opt-outs/import",
        data={"csrf_token": token(client), "numbers": (io.BytesIO(csv), "optouts.csv")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )

    assert cells() == [CELL]
    assert "1 numbers opted out; 0 were already; 1 rows could not be read" in response.text
    assert "line 3:" in response.text and "line 4" not in response.text


def test_the_export_is_safe_to_open_in_a_spreadsheet(client: FlaskClient, organizer: User) -> None:
    optouts.record_opt_out(organizer.organization_id, CELL, '=HYPERLINK("http://x")')
    login(client, organizer)

    response = client.get("/opt-outs/export.csv")

    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "cell,source,opted_out_at"
    # The number as a spreadsheet and VAN read it; the formula made text; the time in the
    # organization's zone, to the second.
    assert lines[1].startswith('2125550242,"\'=HYPERLINK(""http://x"")",')
    assert re.fullmatch(r".*,\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-0[45]:00", lines[1])


def test_reversing_an_opt_out_needs_a_reason_and_is_audited(
    client: FlaskClient, organizer: User
) -> None:
    optouts.record_opt_out(organizer.organization_id, CELL, "inbound_keyword")
    opt_out = db.session.scalars(select(OptOut)).one()
    login(client, organizer)

    client.post(
        f"/opt-outs/{opt_out.id}/reverse", data={"csrf_token": token(client), "reason": "x"}
    )
    assert cells() == [CELL]

    client.post(
        f"/opt-outs/{opt_out.id}/reverse",
        data={"csrf_token": token(client), "reason": "She called to ask", "sure": "y"},
    )
    assert cells() == []
    lifted = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "opt_out_lifted")
    ).one()
    assert (lifted.user_id, lifted.details["why"]) == (organizer.id, "She called to ask")
    assert lifted.details["source"] == "inbound_keyword"


def test_texters_cannot_see_or_change_the_opt_out_list(
    client: FlaskClient, volunteer: User
) -> None:
    login(client, volunteer)

    assert client.get("/opt-outs").status_code == 403
    assert client.get("/opt-outs/export.csv").status_code == 403


def test_another_organizations_opt_out_cannot_be_reversed(client: FlaskClient) -> None:
    elsewhere = make_org()
    optouts.record_opt_out(elsewhere.id, CELL, "inbound_keyword")
    opt_out = db.session.scalars(select(OptOut)).one()
    organizer = make_user(make_org(), role=Role.OWNER)
    login(client, organizer)

    response = client.post(
        f"/opt-outs/{opt_out.id}/reverse",
        data={"csrf_token": token(client), "reason": "x", "sure": "y"},
    )

    assert response.status_code == 404
    assert cells() == [CELL]


def test_the_list_shows_only_this_organizations_numbers(
    client: FlaskClient, organizer: User
) -> None:
    optouts.record_opt_out(make_org().id, "+12125550299", "admin")
    optouts.record_opt_out(organizer.organization_id, CELL, "admin")
    login(client, organizer)

    page = client.get("/opt-outs").get_data(as_text=True)

    assert CELL in page and "+12125550299" not in page
