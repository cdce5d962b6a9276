"""Who may open what: logging in, roles, organizations, CSRF and the headers every page gets.

ROUTES lists every route of the app that needs a login; the first test fails when a route is
added without being listed here, so every new route gets the checks below.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.security import check_password_hash
from werkzeug.test import TestResponse

from gotv.db import db
from gotv.models import Campaign, CampaignStatus, Contact, Message, OptOut, Organization, Role, User
from tests.conftest import csrf_token, login
from tests.factories import PASSWORD, make_campaign, make_contact, make_user

CAMPAIGN_NAME = "Secret Ward 7 Push"
CONTACT_NAME = "Philippa"
CONTACT_CELL = "+12125550177"


@dataclass(frozen=True)
class Route:
    method: str
    rule: str
    # A form that would pass validation, so a refusal is about who asks, not what they sent.
    form: tuple[tuple[str, str], ...] = ()

    def url(self, campaign: Campaign, contact: Contact) -> str:
        return (
            self.rule.replace("<int:campaign_id>", str(campaign.id))
            .replace("<int:contact_id>", str(contact.id))
            .replace("<int:opt_out_id>", str(NO_SUCH_OPT_OUT))
            .replace("<int:import_id>", str(NO_SUCH_IMPORT))
            .replace("<int:message_id>", str(NO_SUCH_IMPORT))
            .replace("<int:sender_id>", str(NO_SUCH_IMPORT))
        )

    @property
    def names_a_campaign_or_contact(self) -> bool:
        return "_id>" in self.rule

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


KEY = "k" * 24
# Opt-out ids are checked by role first and organization second; no row is needed for either.
NO_SUCH_OPT_OUT = 999_999
# Likewise imports: the campaign's organization is checked before the import is looked up.
NO_SUCH_IMPORT = 999_999
ROUTES = [
    Route("GET", "/"),
    Route("POST", "/logout"),
    Route("GET", "/campaigns"),
    Route("POST", "/campaigns", (("name", "New campaign"),)),
    Route("GET", "/campaigns/<int:campaign_id>"),
    Route("GET", "/campaigns/<int:campaign_id>/dashboard"),
    Route("GET", "/campaigns/<int:campaign_id>/dashboard.json"),
    Route("POST", "/campaigns/<int:campaign_id>/script", (("script", "Hijacked {first_name}"),)),
    Route("POST", "/campaigns/<int:campaign_id>/imports"),
    Route("GET", "/campaigns/<int:campaign_id>/imports/<int:import_id>"),
    Route(
        "POST",
        "/campaigns/<int:campaign_id>/imports/<int:import_id>",
        (("cell", "cell"), ("mode", "append")),
    ),
    Route("GET", "/campaigns/<int:campaign_id>/imports/<int:import_id>.json"),
    Route("POST", "/campaigns/<int:campaign_id>/imports/<int:import_id>/cancel"),
    Route("GET", "/campaigns/<int:campaign_id>/imports/<int:import_id>/rejections.csv"),
    Route("POST", "/campaigns/<int:campaign_id>/status", (("status", "archived"),)),
    Route("POST", "/campaigns/<int:campaign_id>/script/opt-out-language"),
    Route("POST", "/campaigns/<int:campaign_id>/smart-encoding", (("smart_encoding", "y"),)),
    Route("POST", "/campaigns/<int:campaign_id>/sender", (("sender_id", "0"),)),
    Route("GET", "/campaigns/archived"),
    Route("POST", "/campaigns/<int:campaign_id>/delete", (("confirm_name", CAMPAIGN_NAME),)),
    Route("POST", "/campaigns/<int:campaign_id>/restore"),
    Route("GET", "/texting"),
    Route("GET", "/texting/<int:campaign_id>/send"),
    Route("POST", "/texting/<int:campaign_id>/send", (("idempotency_key", KEY),)),
    Route("GET", "/texting/<int:campaign_id>/conversations"),
    Route("GET", "/texting/conversations/<int:contact_id>"),
    Route(
        "POST",
        "/texting/conversations/<int:contact_id>/reply",
        (("body", "Hello from elsewhere"), ("idempotency_key", KEY)),
    ),
    Route("POST", "/texting/conversations/<int:contact_id>/opt-out"),
    Route("POST", "/texting/conversations/<int:contact_id>/not-an-opt-out"),
    Route("GET", "/settings"),
    Route("POST", "/settings", (("name", "Hijacked"), ("help_text", "Hijacked"))),
    Route("GET", "/settings/senders"),
    Route("POST", "/settings/senders", (("address", "+14155550199"),)),
    Route("POST", "/settings/senders/<int:sender_id>", (("per_second", "5"),)),
    Route("POST", "/settings/senders/limit", (("per_second", "5"),)),
    Route("GET", "/operations"),
    Route("POST", "/operations/messages/<int:message_id>/settle"),
    Route("GET", "/opt-outs"),
    Route("POST", "/opt-outs", (("cell", CONTACT_CELL),)),
    Route("POST", "/opt-outs/import"),
    Route("GET", "/opt-outs/export.csv"),
    Route("POST", "/opt-outs/<int:opt_out_id>/reverse", (("reason", "x"), ("sure", "y"))),
]
PUBLIC = ("/login", "/static/", "/twilio/")
GET_ROUTES = [r for r in ROUTES if r.method == "GET"]
ORGANIZER_ROUTES = [
    r for r in ROUTES if r.rule.startswith(("/campaigns", "/opt-outs", "/settings", "/operations"))
]
CONVERSATION_ROUTES = [r for r in ROUTES if "<int:contact_id>" in r.rule]
ID_ROUTES = [r for r in ROUTES if r.names_a_campaign_or_contact]
POST_ROUTES = [r for r in ROUTES if r.method == "POST"]


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, name=CAMPAIGN_NAME)


@pytest.fixture
def contact(campaign: Campaign) -> Contact:
    return make_contact(campaign, first_name=CONTACT_NAME, cell=CONTACT_CELL)


def request(
    client: FlaskClient,
    route: Route,
    campaign: Campaign,
    contact: Contact,
    token: str | None = None,
) -> TestResponse:
    url = route.url(campaign, contact)
    if route.method == "GET":
        return client.get(url)
    data = dict(route.form)
    if route.rule.endswith("/send"):
        data["contact_id"] = str(contact.id)
    if token is not None:
        data["csrf_token"] = token
    return client.post(url, data=data)


def outcomes(
    client: FlaskClient,
    routes: list[Route],
    campaign: Campaign,
    contact: Contact,
    token: str | None = None,
) -> dict[str, tuple[int, str]]:
    """Request every route in turn: route -> (status, redirect path), checking nothing leaked."""
    seen = {}
    for route in routes:
        response = request(client, route, campaign, contact, token)
        body = response.get_data(as_text=True)
        leaked = [
            secret for secret in (CAMPAIGN_NAME, CONTACT_NAME, CONTACT_CELL) if secret in body
        ]
        assert not leaked, f"{route} showed {leaked}"
        location = urlsplit(response.headers.get("Location", "")).path
        seen[str(route)] = (response.status_code, location)
    return seen


def every(routes: list[Route], status: int, location: str = "") -> dict[str, tuple[int, str]]:
    return {str(route): (status, location) for route in routes}


def token_from(client: FlaskClient, page: str) -> str:
    return csrf_token(client.get(page).get_data(as_text=True))


def assert_unchanged(campaign: Campaign) -> None:
    db.session.expire_all()
    assert (campaign.name, campaign.status) == (CAMPAIGN_NAME, CampaignStatus.ACTIVE)
    assert "Hijacked" not in campaign.script
    assert db.session.scalars(select(OptOut)).first() is None
    assert db.session.scalars(select(Message)).first() is None


def test_the_route_table_lists_every_route_that_needs_a_login(app: Flask) -> None:
    routes = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        if not rule.rule.startswith(PUBLIC)
    }

    assert routes == {str(route) for route in ROUTES}


# --- Anonymous visitors ----------------------------------------------------------------------


def test_an_anonymous_visitor_is_sent_to_the_login_page(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    seen = outcomes(client, GET_ROUTES, campaign, contact)

    assert seen == every(GET_ROUTES, 302, "/login")


def test_an_anonymous_post_with_a_csrf_token_is_sent_to_the_login_page(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    token = token_from(client, "/login")

    seen = outcomes(client, POST_ROUTES, campaign, contact, token)

    assert seen == every(POST_ROUTES, 302, "/login")
    assert_unchanged(campaign)


def test_an_anonymous_post_without_a_csrf_token_is_refused(
    client: FlaskClient, campaign: Campaign, contact: Contact
) -> None:
    seen = outcomes(client, POST_ROUTES, campaign, contact)

    assert seen == every(POST_ROUTES, 400)
    assert_unchanged(campaign)


# --- Roles and organizations -----------------------------------------------------------------


def test_a_texter_is_forbidden_every_organizer_route(
    client: FlaskClient, volunteer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, volunteer)
    token = token_from(client, "/texting")

    seen = outcomes(client, ORGANIZER_ROUTES, campaign, contact, token)

    assert seen == every(ORGANIZER_ROUTES, 403)
    assert_unchanged(campaign)


def test_an_organizer_of_another_organization_finds_none_of_its_campaigns_or_contacts(
    client: FlaskClient, other_org_organizer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, other_org_organizer)
    token = token_from(client, "/campaigns")

    seen = outcomes(client, ID_ROUTES, campaign, contact, token)

    assert seen == every(ID_ROUTES, 404)
    assert_unchanged(campaign)


def test_a_texter_cannot_open_another_texters_conversation(
    client: FlaskClient,
    organization: Organization,
    volunteer: User,
    campaign: Campaign,
    contact: Contact,
) -> None:
    contact.texter_id = volunteer.id
    db.session.flush()
    login(client, make_user(organization, role=Role.TEXTER))
    token = token_from(client, "/texting")

    seen = outcomes(client, CONVERSATION_ROUTES, campaign, contact, token)

    assert seen == every(CONVERSATION_ROUTES, 404)
    assert_unchanged(campaign)


def test_a_signed_in_post_without_a_csrf_token_is_refused(
    client: FlaskClient, organizer: User, campaign: Campaign, contact: Contact
) -> None:
    login(client, organizer)
    routes = [Route("POST", "/login"), *POST_ROUTES]

    seen = outcomes(client, routes, campaign, contact)

    assert seen == every(routes, 400)
    assert_unchanged(campaign)


# --- Logging in and out ----------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_a_message(client: FlaskClient, volunteer: User) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login", data={"email": volunteer.email, "password": "wrong", "csrf_token": token}
    )

    assert response.status_code == 200
    assert "That email and password do not match." in response.get_data(as_text=True)
    assert client.get("/texting").status_code == 302


def test_a_login_follows_a_next_page_on_this_site(client: FlaskClient, volunteer: User) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login?next=/texting",
        data={"email": volunteer.email, "password": PASSWORD, "csrf_token": token},
    )

    assert response.headers["Location"] == "/texting"


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "https://evil.example",
        "///evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ],
)
def test_a_login_refuses_to_follow_next_off_site(
    client: FlaskClient, volunteer: User, target: str
) -> None:
    token = token_from(client, "/login")

    response = client.post(
        "/login",
        query_string={"next": target},
        data={"email": volunteer.email, "password": PASSWORD, "csrf_token": token},
    )

    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_logging_out_needs_a_post(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    response = client.get("/logout")

    assert response.status_code == 405
    assert client.get("/texting").status_code == 200


def test_logging_out_ends_the_session(client: FlaskClient, volunteer: User) -> None:
    login(client, volunteer)

    client.post("/logout", data={"csrf_token": token_from(client, "/texting")})

    assert client.get("/texting").status_code == 302


def test_passwords_are_stored_hashed(volunteer: User) -> None:
    stored = db.session.scalars(select(User.password_hash).where(User.id == volunteer.id)).one()

    assert PASSWORD not in stored
    assert check_password_hash(stored, PASSWORD)


def test_the_same_password_is_hashed_differently_for_two_users(organization: Organization) -> None:
    first, second = make_user(organization), make_user(organization)

    assert first.password_hash != second.password_hash


# --- Headers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/static/style.css", "/no-such-page"])
def test_every_response_carries_the_security_headers(client: FlaskClient, path: str) -> None:
    with client.get(path) as response:
        headers = response.headers

    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
