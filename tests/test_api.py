"""The JSON API: token auth and scopes on every route, each endpoint, errors in one shape."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from gotv.api import tokens
from gotv.compliance import optouts
from gotv.db import db
from gotv.models import (
    ApiToken,
    AuditEvent,
    Campaign,
    CampaignStatus,
    Contact,
    ContactImport,
    ContactStatus,
    Direction,
    MessageStatus,
    OptOut,
    Organization,
    Role,
    User,
    utcnow,
)
from gotv.people import team
from tests.conftest import csrf_token, login, run_jobs
from tests.factories import make_api_token, make_campaign, make_contact, make_message, make_user

SECRET_NAME = "Secret Ward 7 Push"
SECRET_CELL = "+12125550277"
VOTERS = (
    "Phone,First,Last,ZIP\n"
    "(212) 555-0242,Maria,Garcia,10001\n"
    "212.555.0299,James,Smith,10001\n"
    "555-12,Broken,Number,10001\n"
    "+1 212 555 0277,Opted,Out,10001\n"
)


@dataclass(frozen=True)
class ApiRoute:
    method: str
    rule: str
    scope: str
    json: dict[str, Any] | None = None

    def url(self, campaign: Campaign, contact: Contact) -> str:
        return "/api/v1" + self.rule.replace("{campaign_id}", str(campaign.id)).replace(
            "{contact_id}", str(contact.id)
        ).replace("{import_id}", str(contact_import(campaign).id))

    @property
    def names_a_row(self) -> bool:
        return "{" in self.rule

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


API_ROUTES = [
    ApiRoute("GET", "/campaigns", "campaigns:read"),
    ApiRoute("POST", "/campaigns", "campaigns:write", {"name": "Hijacked"}),
    ApiRoute("GET", "/campaigns/{campaign_id}", "campaigns:read"),
    ApiRoute("POST", "/campaigns/{campaign_id}/status", "campaigns:write", {"action": "archive"}),
    ApiRoute("GET", "/campaigns/{campaign_id}/texting-hours", "campaigns:read"),
    ApiRoute(
        "PUT",
        "/campaigns/{campaign_id}/texting-hours",
        "campaigns:write",
        {"start_hour": 8, "end_hour": 21},
    ),
    ApiRoute("GET", "/campaigns/{campaign_id}/script", "campaigns:read"),
    ApiRoute(
        "PUT",
        "/campaigns/{campaign_id}/time-zone-rule",
        "campaigns:write",
        {"trust_zip_alone": True},
    ),
    ApiRoute("GET", "/campaigns/{campaign_id}/stats", "stats:read"),
    ApiRoute("POST", "/campaigns/{campaign_id}/imports", "contacts:write"),
    ApiRoute("GET", "/imports/{import_id}", "contacts:write"),
    ApiRoute("GET", "/campaigns/{campaign_id}/conversations", "conversations:read"),
    ApiRoute("GET", "/conversations/{contact_id}/messages", "conversations:read"),
    ApiRoute("GET", "/opt-outs", "optouts:read"),
    ApiRoute("POST", "/opt-outs", "optouts:write", {"numbers": ["+12125550223"]}),
    ApiRoute("GET", "/opt-outs/export.csv", "optouts:read"),
]
ID_ROUTES = [route for route in API_ROUTES if route.names_a_row]


@pytest.fixture(autouse=True)
def upload_dir(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    return tmp_path


@pytest.fixture
def secret(organization: Organization, organizer: User) -> str:
    """A token of the organization with every scope."""
    return make_api_token(organization, organizer)


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, name=SECRET_NAME)


@pytest.fixture
def contact(campaign: Campaign) -> Contact:
    return make_contact(campaign, cell=SECRET_CELL, status=ContactStatus.TEXTED)


def contact_import(campaign: Campaign) -> ContactImport:
    """The campaign's import, added on first use (routes that name one need it)."""
    existing = db.session.scalars(
        select(ContactImport).where(ContactImport.campaign_id == campaign.id)
    ).first()
    if existing is not None:
        return existing
    imp = ContactImport(
        organization_id=campaign.organization_id,
        campaign_id=campaign.id,
        filename="secret.csv",
        upload_key="nonexistent.upload",
    )
    db.session.add(imp)
    db.session.flush()
    return imp


def bearer(secret: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"} if secret is not None else {}


def call(client: FlaskClient, route: ApiRoute, url: str, secret: str | None) -> TestResponse:
    if route.json is not None:
        return client.open(url, method=route.method, json=route.json, headers=bearer(secret))
    return client.open(url, method=route.method, headers=bearer(secret))


def get(client: FlaskClient, path: str, secret: str, **options: Any) -> TestResponse:
    return client.get("/api/v1" + path, headers=bearer(secret), **options)


def post(client: FlaskClient, path: str, secret: str, **options: Any) -> TestResponse:
    return client.post("/api/v1" + path, headers=bearer(secret), **options)


def error_code(response: TestResponse) -> str:
    """The API's error code, checking the response has the one error shape."""
    assert response.mimetype == "application/json", response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    code: str = body["error"]["code"]
    return code


def outcomes(
    client: FlaskClient, routes: list[ApiRoute], campaign: Campaign, contact: Contact, secret: Any
) -> dict[str, tuple[int, str]]:
    """route -> (status, error code) for each route, checking no secret of the org leaked."""
    seen = {}
    for route in routes:
        token = secret(route) if callable(secret) else secret
        response = call(client, route, route.url(campaign, contact), token)
        body = response.get_data(as_text=True)
        assert SECRET_NAME not in body and SECRET_CELL not in body, f"{route} leaked"
        seen[str(route)] = (response.status_code, error_code(response))
    return seen


def every(routes: list[ApiRoute], status: int, code: str) -> dict[str, tuple[int, str]]:
    return {str(route): (status, code) for route in routes}


def assert_unchanged(campaign: Campaign) -> None:
    db.session.expire_all()
    assert (campaign.name, campaign.status) == (SECRET_NAME, CampaignStatus.ACTIVE)
    assert (campaign.window_start_hour, campaign.window_end_hour) == (9, 20)
    names = db.session.scalars(select(Campaign.name)).all()
    assert "Hijacked" not in names
    assert db.session.scalars(select(OptOut)).first() is None
    assert (
        db.session.scalars(
            select(ContactImport).where(ContactImport.filename != "secret.csv")
        ).first()
        is None
    )


# --- Tokens on every route -----------------------------------------------------------------


def test_the_table_lists_every_api_route(app: Flask) -> None:
    routes = {
        f"{method} {rule.rule.removeprefix('/api/v1')}"
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    listed = {str(route).replace("{", "<int:").replace("}", ">") for route in API_ROUTES}

    assert routes == listed | {"GET /openapi.json"}


def test_every_route_refuses_a_request_without_a_token(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    seen = outcomes(client, API_ROUTES, campaign, contact, None)

    assert seen == every(API_ROUTES, 401, "unauthorized")
    assert_unchanged(campaign)


@pytest.mark.parametrize(
    "wrong",
    ["nonsense", "gotv_", "gotv_abc_def", "Basic dXNlcjpwYXNz"],
)
def test_every_route_refuses_a_wrong_token(
    client: FlaskClient, campaign: Campaign, contact: Contact, secret: str, wrong: str
) -> None:
    prefix = tokens.prefix_of(secret)
    forged = {"gotv_abc_def": f"gotv_{prefix}_not-the-secret"}.get(wrong, wrong)

    seen = outcomes(client, API_ROUTES, campaign, contact, forged)

    assert seen == every(API_ROUTES, 401, "unauthorized")
    assert_unchanged(campaign)


def test_every_route_refuses_a_revoked_token(
    client: FlaskClient, campaign: Campaign, contact: Contact, secret: str, organizer: User
) -> None:
    token = db.session.scalars(select(ApiToken)).one()
    tokens.revoke(token, organizer.id)
    db.session.flush()

    seen = outcomes(client, API_ROUTES, campaign, contact, secret)

    assert seen == every(API_ROUTES, 401, "unauthorized")
    assert_unchanged(campaign)


def test_every_route_refuses_a_token_whose_creator_is_suspended_until_they_are_reinstated(
    client: FlaskClient,
    organization: Organization,
    campaign: Campaign,
    contact: Contact,
    organizer: User,
) -> None:
    admin = make_user(organization, role=Role.ADMIN)
    secret = make_api_token(organization, admin)
    team.suspend(admin, organizer, utcnow())
    db.session.flush()

    refused = outcomes(client, API_ROUTES, campaign, contact, secret)
    opt_out = post(client, "/opt-outs", secret, json={"numbers": ["+12125550142"]})
    team.reinstate(admin, organizer)
    db.session.flush()
    again = get(client, "/campaigns", secret)

    assert refused == every(API_ROUTES, 401, "unauthorized")
    assert opt_out.status_code == 401
    assert db.session.scalars(select(OptOut)).all() == []
    assert_unchanged(campaign)
    assert again.status_code == 200


def test_a_token_stops_when_its_creator_is_made_a_texter(
    client: FlaskClient, organization: Organization, organizer: User, campaign: Campaign
) -> None:
    admin = make_user(organization, role=Role.ADMIN)
    secret = make_api_token(organization, admin)
    assert get(client, "/campaigns", secret).status_code == 200

    team.change_role(admin, Role.TEXTER, organizer)
    db.session.flush()
    read = get(client, "/campaigns", secret)
    written = post(client, "/opt-outs", secret, json={"numbers": ["+12125550142"]})

    assert (read.status_code, written.status_code) == (401, 401)
    assert db.session.scalars(select(OptOut)).all() == []


def test_the_tokens_page_says_which_tokens_stopped_with_their_creator(
    client: FlaskClient, organization: Organization, organizer: User
) -> None:
    admin = make_user(organization, role=Role.ADMIN)
    make_api_token(organization, admin)
    team.suspend(admin, organizer, utcnow())
    login(client, organizer)

    page = client.get("/settings/api-tokens").get_data(as_text=True)

    assert "Stopped: its creator is no longer an organizer who can sign in" in page


def test_every_route_refuses_a_token_without_its_scope(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    campaign: Campaign,
    contact: Contact,
) -> None:
    others = {
        route.scope: make_api_token(
            organization, organizer, [s for s in tokens.SCOPES if s != route.scope]
        )
        for route in API_ROUTES
    }

    seen = outcomes(client, API_ROUTES, campaign, contact, lambda route: others[route.scope])

    assert seen == every(API_ROUTES, 403, "insufficient_scope")
    assert_unchanged(campaign)


def test_every_route_finds_nothing_of_another_organization(
    client: FlaskClient, other_org_organizer: User, campaign: Campaign, contact: Contact
) -> None:
    stranger = make_api_token(other_org_organizer.organization, other_org_organizer)

    seen = outcomes(client, ID_ROUTES, campaign, contact, stranger)

    assert seen == every(ID_ROUTES, 404, "not_found")
    assert_unchanged(campaign)


def test_lists_of_another_organization_show_none_of_its_rows(
    client: FlaskClient, other_org_organizer: User, campaign: Campaign, organization: Organization
) -> None:
    optouts.record_opt_out(organization.id, SECRET_CELL, "admin")
    stranger = make_api_token(other_org_organizer.organization, other_org_organizer)

    for path in ("/campaigns", "/opt-outs", "/opt-outs/export.csv"):
        response = get(client, path, stranger)
        assert response.status_code == 200
        text = response.get_data(as_text=True)
        assert SECRET_NAME not in text and SECRET_CELL not in text


def test_a_token_notes_its_last_use_at_most_once_a_minute(client: FlaskClient, secret: str) -> None:
    token = db.session.scalars(select(ApiToken)).one()
    with time_machine.travel(utcnow(), tick=False) as traveller:
        get(client, "/campaigns", secret)
        db.session.expire_all()
        first = token.last_used_at
        traveller.shift(timedelta(seconds=30))
        get(client, "/campaigns", secret)
        db.session.expire_all()
        assert token.last_used_at == first
        traveller.shift(timedelta(seconds=31))
        get(client, "/campaigns", secret)
        db.session.expire_all()

    assert first is not None and token.last_used_at == first + timedelta(seconds=61)


def test_a_token_is_stored_only_as_a_hash(secret: str) -> None:
    token = db.session.scalars(select(ApiToken)).one()

    assert secret.startswith(f"gotv_{token.prefix}_")
    assert secret not in (token.secret_hash, token.prefix, token.name)
    assert token.secret_hash == tokens.hash_token(secret)


def test_the_api_sets_no_cookie_and_ignores_a_signed_in_session(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)

    response = client.get("/api/v1/campaigns")

    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers


# --- Errors in one shape -------------------------------------------------------------------


def test_an_unknown_api_path_is_a_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/no-such-thing")

    assert (response.status_code, error_code(response)) == (404, "not_found")


def test_a_wrong_method_is_a_json_405(client: FlaskClient, secret: str) -> None:
    response = client.delete("/api/v1/campaigns", headers=bearer(secret))

    assert (response.status_code, error_code(response)) == (405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_a_body_that_is_not_json_is_a_json_400(client: FlaskClient, secret: str) -> None:
    response = post(client, "/campaigns", secret, data="{", content_type="application/json")

    assert (response.status_code, error_code(response)) == (400, "invalid_json")


def test_json_nested_too_deep_is_a_json_400(client: FlaskClient, secret: str) -> None:
    response = post(
        client, "/opt-outs", secret, data="[" * 100_000, content_type="application/json"
    )

    assert (response.status_code, error_code(response)) == (400, "invalid_json")


@pytest.mark.parametrize(
    "wrong", ["gotv_", "gotv_abc_x", "gotv_ABCDEF012345_x", "gotv_0123456789ab", "gotv_\x00_x"]
)
def test_a_malformed_token_is_not_even_looked_up(wrong: str) -> None:
    assert tokens.prefix_of(wrong) is None


def test_a_bad_parameter_is_a_json_400(client: FlaskClient, secret: str) -> None:
    for query in ({"limit": "0"}, {"limit": "many"}, {"after": "-1"}):
        response = get(client, "/campaigns", secret, query_string=query)
        assert (response.status_code, error_code(response)) == (400, "invalid_parameter")


def test_a_body_over_the_limit_is_a_json_413(
    app: Flask, client: FlaskClient, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 100)

    response = post(client, "/opt-outs", secret, json={"numbers": ["+12125550223"] * 20})

    assert (response.status_code, error_code(response)) == (413, "request_entity_too_large")


def test_pages_outside_the_api_keep_their_html_errors(client: FlaskClient) -> None:
    response = client.get("/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"


# --- Campaigns -----------------------------------------------------------------------------


def test_it_lists_campaigns_a_page_at_a_time(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    first, second = make_campaign(organization), make_campaign(organization)

    page_one = get(client, "/campaigns", secret, query_string={"limit": 1}).get_json()
    page_two = get(
        client, "/campaigns", secret, query_string={"limit": 1, "after": page_one["next_after"]}
    ).get_json()

    assert [c["id"] for c in page_one["data"]] == [first.id]
    assert [c["id"] for c in page_two["data"]] == [second.id]
    assert page_two["next_after"] is None


def test_it_shows_one_campaign(client: FlaskClient, campaign: Campaign, secret: str) -> None:
    body = get(client, f"/campaigns/{campaign.id}", secret).get_json()

    assert body["name"] == SECRET_NAME
    assert body["status"] == "active"


def test_it_creates_a_draft_campaign_and_audits_it(client: FlaskClient, secret: str) -> None:
    response = post(
        client,
        "/campaigns",
        secret,
        json={"name": "Early vote", "script": "Hi {first_name}, it's {texter_name}."},
    )

    assert response.status_code == 201
    body = response.get_json()
    assert (body["name"], body["status"]) == ("Early vote", "draft")
    assert response.headers["Location"] == f"/api/v1/campaigns/{body['id']}"
    assert "api_campaign_created" in audited_actions()


def test_it_refuses_a_script_with_unknown_merge_fields_naming_them(
    client: FlaskClient, secret: str
) -> None:
    response = post(
        client, "/campaigns", secret, json={"name": "X", "script": "Hi {nickname} of {ward}"}
    )

    assert (response.status_code, error_code(response)) == (422, "unknown_merge_fields")
    assert response.get_json()["error"]["fields"] == ["nickname", "ward"]
    assert db.session.scalars(select(Campaign)).first() is None


@pytest.mark.parametrize("body", [{}, {"name": "  "}, {"name": 7}, {"name": "a\x00b"}])
def test_it_refuses_a_campaign_without_a_name(
    client: FlaskClient, secret: str, body: dict[str, Any]
) -> None:
    response = post(client, "/campaigns", secret, json=body)

    assert (response.status_code, error_code(response)) == (422, "invalid_field")


def test_it_launches_pauses_and_archives_a_campaign(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    draft = make_campaign(organization, status=CampaignStatus.DRAFT)
    seen = []
    for action in ("launch", "pause", "archive"):
        response = post(client, f"/campaigns/{draft.id}/status", secret, json={"action": action})
        seen.append(response.get_json()["status"])

    assert seen == ["active", "paused", "archived"]
    assert audited_actions().count("api_campaign_status") == 3


def test_it_will_not_launch_a_campaign_without_a_script(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    draft = make_campaign(organization, status=CampaignStatus.DRAFT, script="")

    response = post(client, f"/campaigns/{draft.id}/status", secret, json={"action": "launch"})

    assert (response.status_code, error_code(response)) == (422, "script_required")
    db.session.expire_all()
    assert draft.status == CampaignStatus.DRAFT


def test_it_refuses_an_unknown_action(client: FlaskClient, campaign: Campaign, secret: str) -> None:
    response = post(client, f"/campaigns/{campaign.id}/status", secret, json={"action": "send"})

    assert (response.status_code, error_code(response)) == (422, "unknown_action")


def test_it_gives_a_campaigns_totals(
    client: FlaskClient, campaign: Campaign, contact: Contact, secret: str
) -> None:
    make_message(contact, status=MessageStatus.DELIVERED, is_initial=True)
    make_message(contact, direction=Direction.INBOUND, status=MessageStatus.RECEIVED)
    make_contact(campaign)

    body = get(client, f"/campaigns/{campaign.id}/stats", secret).get_json()

    assert body["campaign_id"] == campaign.id
    assert (body["contacts"], body["texted"], body["delivered"], body["replies"]) == (2, 1, 1, 1)
    assert body["reply_rate"] == 1.0


# --- Uploads -------------------------------------------------------------------------------


def test_an_upload_is_imported_end_to_end(
    app: Flask, client: FlaskClient, campaign: Campaign, secret: str
) -> None:
    optouts.record_opt_out(campaign.organization_id, SECRET_CELL, "admin")
    response = post(
        client,
        f"/campaigns/{campaign.id}/imports",
        secret,
        data={"file": (io.BytesIO(VOTERS.encode()), "voters.csv"), "cell": "Phone"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    accepted = response.get_json()
    assert accepted["status"] == "queued"
    assert response.headers["Location"] == accepted["progress_url"]

    run_jobs(app)
    progress = client.get(accepted["progress_url"], headers=bearer(secret)).get_json()

    assert progress["status"] == "done" and progress["finished"]
    assert (progress["loaded"], progress["rejected"], progress["opted_out"]) == (2, 1, 1)
    assert progress["mapping"] == {"cell": "Phone"}
    cells = db.session.scalars(select(Contact.cell).where(Contact.campaign_id == campaign.id))
    assert sorted(cells) == ["+12125550242", "+12125550299"]
    assert "api_contacts_uploaded" in audited_actions()


def test_a_text_csv_body_is_imported_with_its_mapping_in_the_query(
    app: Flask, client: FlaskClient, campaign: Campaign, secret: str
) -> None:
    response = post(
        client,
        f"/campaigns/{campaign.id}/imports",
        secret,
        query_string={"cell": "Phone", "first_name": "First", "filename": "list.csv"},
        data=VOTERS,
        content_type="text/csv",
    )
    assert response.status_code == 202, response.get_data(as_text=True)

    run_jobs(app)

    first_names = db.session.scalars(
        select(Contact.first_name).where(Contact.campaign_id == campaign.id)
    )
    assert sorted(first_names) == ["James", "Maria", "Opted"]


def test_an_upload_guesses_the_mapping_when_none_is_given(
    app: Flask, client: FlaskClient, campaign: Campaign, secret: str
) -> None:
    response = post(
        client, f"/campaigns/{campaign.id}/imports", secret, data=VOTERS, content_type="text/csv"
    )

    run_jobs(app)
    progress = client.get(response.get_json()["progress_url"], headers=bearer(secret)).get_json()
    assert progress["mapping"]["cell"] == "Phone"
    assert progress["loaded"] == 3


def test_an_upload_that_cannot_be_mapped_names_the_files_columns(
    client: FlaskClient, campaign: Campaign, secret: str, upload_dir: Path
) -> None:
    response = post(
        client,
        f"/campaigns/{campaign.id}/imports",
        secret,
        query_string={"cell": "Mobile"},
        data="Name,Ward\nMaria,7\n",
        content_type="text/csv",
    )

    assert (response.status_code, error_code(response)) == (422, "invalid_mapping")
    assert response.get_json()["error"]["headers"] == ["Name", "Ward"]
    assert db.session.scalars(select(ContactImport)).first() is None
    assert list(upload_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        ({"data": "", "content_type": "text/csv"}, 422, "unreadable_list"),
        ({"json": {"file": "x"}}, 400, "no_file"),
        (
            {"data": VOTERS, "content_type": "text/csv", "query_string": {"mode": "x"}},
            422,
            "invalid_field",
        ),
    ],
)
def test_an_upload_without_a_usable_list_is_refused(
    client: FlaskClient,
    campaign: Campaign,
    secret: str,
    options: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = post(client, f"/campaigns/{campaign.id}/imports", secret, **options)

    assert (response.status_code, error_code(response)) == (status, code)


# --- Conversations -------------------------------------------------------------------------


def test_it_lists_a_campaigns_conversations_and_their_messages(
    client: FlaskClient, campaign: Campaign, contact: Contact, secret: str
) -> None:
    make_contact(campaign)  # not texted yet: no conversation
    sent = make_message(contact, body="Will you vote?", is_initial=True)
    reply = make_message(
        contact, direction=Direction.INBOUND, body="Yes", status=MessageStatus.RECEIVED
    )

    conversations = get(client, f"/campaigns/{campaign.id}/conversations", secret).get_json()
    messages = get(
        client, f"/conversations/{contact.id}/messages", secret, query_string={"limit": 1}
    ).get_json()
    rest = get(
        client,
        f"/conversations/{contact.id}/messages",
        secret,
        query_string={"after": messages["next_after"]},
    ).get_json()

    assert [c["cell"] for c in conversations["data"]] == [SECRET_CELL]
    assert [m["id"] for m in messages["data"] + rest["data"]] == [sent.id, reply.id]
    assert rest["data"][0]["direction"] == "inbound"


# --- Opt-outs ------------------------------------------------------------------------------


def test_it_imports_opt_outs_reporting_each_number(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    optouts.record_opt_out(organization.id, "+12125550242", "admin")

    response = post(
        client,
        "/opt-outs",
        secret,
        json={"numbers": ["(212) 555-0299", "+1 212 555 0242", "555-12"]},
    )

    results = response.get_json()["results"]
    assert [(r["cell"], r["result"]) for r in results] == [
        ("+12125550299", "opted_out"),
        ("+12125550242", "already_opted_out"),
        (None, "invalid"),
    ]
    assert results[2]["error"]
    assert optouts.is_opted_out(organization.id, "+12125550299")
    assert "api_opt_outs_imported" in audited_actions()


def test_opting_out_refuses_texts_already_queued(
    client: FlaskClient, campaign: Campaign, contact: Contact, secret: str
) -> None:
    queued = make_message(contact)

    post(client, "/opt-outs", secret, json={"numbers": [SECRET_CELL]})

    db.session.expire_all()
    assert queued.status == MessageStatus.REFUSED


@pytest.mark.parametrize("body", [{}, {"numbers": []}, {"numbers": [1]}, {"numbers": "x"}])
def test_it_refuses_an_opt_out_import_that_is_not_a_list_of_numbers(
    client: FlaskClient, secret: str, body: dict[str, Any]
) -> None:
    response = post(client, "/opt-outs", secret, json=body)

    assert (response.status_code, error_code(response)) == (422, "invalid_field")


def test_it_lists_opt_outs_since_a_time(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    with time_machine.travel("2026-10-01T12:00:00Z", tick=False):
        optouts.record_opt_out(organization.id, "+12125550242", "admin")
    with time_machine.travel("2026-10-03T12:00:00Z", tick=False):
        optouts.record_opt_out(organization.id, "+12125550299", "inbound_keyword")

    everyone = get(client, "/opt-outs", secret).get_json()
    recent = get(
        client, "/opt-outs", secret, query_string={"since": "2026-10-02T00:00:00"}
    ).get_json()
    bad = get(client, "/opt-outs", secret, query_string={"since": "yesterday"})

    assert [o["cell"] for o in everyone["data"]] == ["+12125550242", "+12125550299"]
    assert [o["cell"] for o in recent["data"]] == ["+12125550299"]
    assert (bad.status_code, error_code(bad)) == (400, "invalid_parameter")


def test_the_opt_out_export_is_spreadsheet_safe_and_audited(
    client: FlaskClient, organization: Organization, secret: str
) -> None:
    optouts.record_opt_out(organization.id, "+12125550242", '=HYPERLINK("http://x")')

    response = get(client, "/opt-outs/export.csv", secret)

    lines = response.get_data(as_text=True).splitlines()
    assert response.mimetype == "text/csv"
    assert lines[0] == "cell,source,opted_out_at"
    # The number as a spreadsheet and VAN read it; the formula made text.
    assert lines[1].startswith('2125550242,"\'=HYPERLINK(""http://x"")",')
    assert "opt_outs_exported" in audited_actions()


def test_the_api_has_no_way_to_send_a_text_or_lift_an_opt_out(app: Flask) -> None:
    writes = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in (rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}
    }

    # Texts need a volunteer's click in the app; an opt-out is lifted only by a person there.
    assert writes == {
        "POST /api/v1/campaigns",
        "POST /api/v1/campaigns/<int:campaign_id>/status",
        "PUT /api/v1/campaigns/<int:campaign_id>/texting-hours",
        "PUT /api/v1/campaigns/<int:campaign_id>/time-zone-rule",
        "POST /api/v1/campaigns/<int:campaign_id>/imports",
        "POST /api/v1/opt-outs",
    }


# --- The OpenAPI document ------------------------------------------------------------------


def test_the_openapi_document_is_public_and_describes_every_route(
    app: Flask, client: FlaskClient
) -> None:
    document = client.get("/api/v1/openapi.json").get_json()

    described = {
        f"{method.upper()} {path}"
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert document["openapi"].startswith("3.1")
    assert described == {str(route) for route in API_ROUTES} | {"GET /openapi.json"}
    scopes = {
        operation["x-scope"]
        for operations in document["paths"].values()
        for operation in operations.values()
        if "x-scope" in operation
    }
    assert scopes == set(tokens.SCOPES)


# --- The settings page ---------------------------------------------------------------------


def test_an_organizer_creates_a_token_and_sees_its_secret_once(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)
    page = client.get("/settings/api-tokens")

    response = client.post(
        "/settings/api-tokens",
        data={
            "csrf_token": csrf_token(page.get_data(as_text=True)),
            "name": "Our CRM",
            "scopes": ["campaigns:read", "optouts:read"],
        },
    )

    html = response.get_data(as_text=True)
    token = db.session.scalars(select(ApiToken)).one()
    shown = html.split('id="new-token" class="token" value="')[1].split('"')[0]
    assert response.status_code == 201 and response.headers["Cache-Control"] == "no-store"
    assert tokens.hash_token(shown) == token.secret_hash
    assert (token.name, token.scopes) == ("Our CRM", ["campaigns:read", "optouts:read"])
    assert shown not in client.get("/settings/api-tokens").get_data(as_text=True)
    assert client.get("/api/v1/campaigns", headers=bearer(shown)).status_code == 200
    assert "api_token_created" in audited_actions()


def test_a_token_needs_a_name_and_a_scope(client: FlaskClient, organizer: User) -> None:
    login(client, organizer)
    page = client.get("/settings/api-tokens").get_data(as_text=True)

    response = client.post(
        "/settings/api-tokens", data={"csrf_token": csrf_token(page), "name": "X"}
    )

    assert response.status_code == 400
    assert "Choose at least one scope." in response.get_data(as_text=True)
    assert db.session.scalars(select(ApiToken)).first() is None


def test_no_scope_box_is_required_so_a_browser_sends_any_subset(
    client: FlaskClient, organizer: User
) -> None:
    login(client, organizer)

    page = client.get("/settings/api-tokens").get_data(as_text=True)

    boxes = re.findall(r'<input[^>]*name="scopes"[^>]*>', page)
    assert len(boxes) == len(tokens.SCOPES)
    assert not [box for box in boxes if "required" in box]


def test_an_organizer_revokes_a_token_and_the_api_refuses_it_at_once(
    client: FlaskClient, organizer: User, secret: str
) -> None:
    token = db.session.scalars(select(ApiToken)).one()
    login(client, organizer)
    page = client.get("/settings/api-tokens").get_data(as_text=True)

    client.post(f"/settings/api-tokens/{token.id}/revoke", data={"csrf_token": csrf_token(page)})

    assert client.get("/api/v1/campaigns", headers=bearer(secret)).status_code == 401
    assert "api_token_revoked" in audited_actions()
    assert "Revoked" in client.get("/settings/api-tokens").get_data(as_text=True)


def test_a_texter_cannot_see_the_tokens_page(
    client: FlaskClient, organization: Organization
) -> None:
    login(client, make_user(organization, role=Role.TEXTER))

    assert client.get("/settings/api-tokens").status_code == 403


def audited_actions() -> list[str]:
    return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
