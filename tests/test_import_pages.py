"""The import pages: upload a list, check its columns, start it, watch it, download the rejects."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq import Queue
from sqlalchemy import select
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.edge import queue
from gotv.models import Campaign, Contact, ContactImport, ImportMode, ImportStatus, Role, User
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import make_campaign, make_contact, make_user

VAN_EXPORT = (
    "VANID,FirstName,LastName,CellPhone,ZIP5,Nickname\n"
    "101,Maria,Garcia,(212) 555-0242,10001,Mari\n"
    "102,<b>James</b>,Smith,212.555.0299,10001,Jim\n"
    "103,Broken,Number,555-12,10001,Bro\n"
)
MAPPING = {"cell": "CellPhone", "first_name": "FirstName", "last_name": "LastName", "zip": "ZIP5"}


@pytest.fixture(autouse=True)
def upload_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def campaign(organizer: User) -> Campaign:
    return make_campaign(organizer.organization, name="Ward 7")


def upload(
    client: FlaskClient, campaign: Campaign, text: str | bytes, filename: str = "voters.csv"
) -> TestResponse:
    data = text.encode() if isinstance(text, str) else text
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    return client.post(
        f"/campaigns/{campaign.id}/imports",
        data={"csrf_token": csrf_token(page), "contacts": (io.BytesIO(data), filename)},
        content_type="multipart/form-data",
    )


def uploaded(client: FlaskClient, campaign: Campaign, text: str = VAN_EXPORT) -> str:
    """Upload `text` and return the mapping screen's URL."""
    response = upload(client, campaign, text)
    assert response.status_code == 302, response.get_data(as_text=True)
    return response.headers["Location"]


def start(client: FlaskClient, url: str, **changes: str | list[str]) -> TestResponse:
    """Press Start import on the mapping screen at `url`, with `changes` to the form."""
    token = csrf_token(client.get(url).get_data(as_text=True))
    form: dict[str, str | list[str]] = {"csrf_token": token, "mode": "append", **MAPPING}
    form.update(changes)
    return client.post(url, data=form)


def the_import() -> ContactImport:
    db.session.expire_all()
    return db.session.scalars(select(ContactImport)).one()


def selected(html: str, field: str) -> str:
    """The selected option's value in the select for `field` ("" for none)."""
    select_html = re.search(rf'<select[^>]*id="map-{field}".*?</select>', html, re.S)
    assert select_html, f"no select for {field}"
    option = re.search(r'<option selected value="([^"]*)"', select_html.group(0))
    return option.group(1) if option else ""


def cells() -> list[str]:
    return list(db.session.scalars(select(Contact.cell).order_by(Contact.cell)))


def test_an_uploaded_list_opens_a_mapping_screen_with_columns_auto_mapped_and_a_preview(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    url = uploaded(client, campaign)
    page = client.get(url).get_data(as_text=True)

    imp = the_import()
    assert url.endswith(f"/campaigns/{campaign.id}/imports/{imp.id}")
    assert imp.status == ImportStatus.UPLOADED and cells() == []
    assert {field: selected(page, field) for field in MAPPING} == MAPPING
    assert "voters.csv" in page and "commas" in page
    assert "— not in this file —" in page
    assert "&lt;b&gt;James&lt;/b&gt;" in page and "<b>James</b>" not in page
    assert "(212) 555-0242" in page


def test_the_organizer_corrects_the_mapping_before_the_list_is_loaded(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)

    start(client, url, first_name="Nickname")
    run_jobs(app)

    names = db.session.scalars(select(Contact.first_name).order_by(Contact.cell)).all()
    assert names == ["Mari", "Jim"]
    assert the_import().mapping["first_name"] == "Nickname"


def test_starting_an_import_queues_it_and_the_worker_loads_the_list(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)

    response = start(client, url)

    assert response.status_code == 302 and response.headers["Location"] == url
    assert the_import().status == ImportStatus.QUEUED
    assert Queue(queue.IMPORT, connection=queue.redis()).count == 1
    assert cells() == []
    page = client.get(url).get_data(as_text=True)
    assert "<progress" in page and "Cancel import" in page
    assert 'aria-live="polite"' in page and "import.js" in page

    run_jobs(app)

    assert cells() == ["+12125550242", "+12125550299"]
    page = client.get(url).get_data(as_text=True)
    assert the_import().status == ImportStatus.DONE
    assert "2 contacts loaded of 3 rows read" in page
    assert "Cancel import" not in page and "Broken" in page


def test_the_progress_json_reports_the_counts_for_the_progress_bar(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)
    start(client, url)

    before = client.get(url + ".json")
    run_jobs(app)
    after = client.get(url + ".json")

    assert before.status_code == 200 and before.headers["Cache-Control"] == "no-store"
    assert before.json is not None and before.json["status"] == "queued"
    assert not before.json["finished"]
    assert after.json is not None
    assert {key: after.json[key] for key in ("status", "percent", "finished")} == {
        "status": "done",
        "percent": 100,
        "finished": True,
    }
    assert (after.json["rows_read"], after.json["loaded"], after.json["rejected"]) == (3, 2, 1)


def test_a_cancelled_import_loads_nothing(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)
    start(client, url)
    page = client.get(url).get_data(as_text=True)

    response = client.post(url + "/cancel", data={"csrf_token": csrf_token(page)})
    run_jobs(app)

    assert response.status_code == 302 and response.headers["Location"] == url
    assert the_import().status == ImportStatus.CANCELLED
    assert cells() == []
    assert "Nothing from this list was loaded" in client.get(url).get_data(as_text=True)


def test_the_rows_not_loaded_download_as_a_csv_with_their_reasons(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign, cell="+12125550299")
    login(client, organizer)
    url = uploaded(client, campaign)
    start(client, url)
    run_jobs(app)

    page = client.get(url).get_data(as_text=True)
    response = client.get(url + "/rejections.csv")

    assert f'href="{url}/rejections.csv"' in page
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 3  # the header, the bad number, the number already in the campaign
    assert any("555-12" in line for line in lines[1:])
    assert any("212.555.0299" in line for line in lines[1:])


def test_a_mapping_without_a_cell_column_is_sent_back_with_a_message(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)

    response = start(client, url, cell="")

    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert 'class="flash error"' in page and "Start import" in page
    assert the_import().status == ImportStatus.UPLOADED
    assert Queue(queue.IMPORT, connection=queue.redis()).count == 0


def test_a_header_the_file_does_not_have_is_refused(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)

    response = start(client, url, zip="Precinct")

    assert response.status_code == 400
    assert the_import().status == ImportStatus.UPLOADED


def test_replacing_the_untexted_contacts_is_the_organizers_choice(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    make_contact(campaign, cell="+12125550200")
    login(client, organizer)
    url = uploaded(client, campaign)

    start(client, url, mode="replace")
    run_jobs(app)

    assert the_import().mode == ImportMode.REPLACE
    assert cells() == ["+12125550242", "+12125550299"]


def test_only_the_organizations_other_campaigns_can_be_excluded(
    client: FlaskClient, organizer: User, campaign: Campaign, other_org_organizer: User
) -> None:
    earlier = make_campaign(organizer.organization, name="Primary push")
    theirs = make_campaign(other_org_organizer.organization, name="Their campaign")
    login(client, organizer)
    url = uploaded(client, campaign)
    page = client.get(url).get_data(as_text=True)

    refused = start(client, url, exclude=[str(theirs.id)])
    accepted = start(client, url, exclude=[str(earlier.id)])

    assert "Primary push" in page and "Their campaign" not in page and "Ward 7</label>" not in page
    assert refused.status_code == 400
    assert accepted.status_code == 302
    assert the_import().exclude_campaign_ids == [earlier.id]


def test_an_unreadable_file_is_explained_on_the_campaign_page(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)

    response = upload(client, campaign, b"")
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert response.headers["Location"] == f"/campaigns/{campaign.id}"
    assert "That file could not be read" in page
    assert db.session.scalars(select(ContactImport)).first() is None


def test_the_campaign_page_lists_recent_imports_with_links(
    app: Flask, client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)
    start(client, url)
    run_jobs(app)

    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)

    assert f'href="{url}"' in page and "voters.csv" in page
    assert re.search(r"done</span></td>\s*<td>2</td>", page)


def test_an_organizer_of_another_organization_finds_none_of_the_import_pages(
    client: FlaskClient, organizer: User, campaign: Campaign, other_org_organizer: User
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/campaigns").text)})
    login(client, other_org_organizer)
    their_campaign = make_campaign(other_org_organizer.organization)
    token = csrf_token(client.get("/campaigns").text)
    # Their own campaign's id with our import id: the import must still not be found.
    disguised = url.replace(f"/campaigns/{campaign.id}/", f"/campaigns/{their_campaign.id}/")

    statuses = [
        client.get(target).status_code
        for base in (url, disguised)
        for target in (base, base + ".json", base + "/rejections.csv")
    ] + [
        client.post(target, data={"csrf_token": token, **MAPPING}).status_code
        for base in (url, disguised)
        for target in (base, base + "/cancel")
    ]

    assert statuses == [404] * 10
    assert the_import().status == ImportStatus.UPLOADED


def test_a_texter_cannot_open_an_import(
    client: FlaskClient, organizer: User, campaign: Campaign
) -> None:
    login(client, organizer)
    url = uploaded(client, campaign)
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/campaigns").text)})
    login(client, make_user(organizer.organization, role=Role.TEXTER))

    assert [client.get(target).status_code for target in (url, url + ".json")] == [403, 403]
