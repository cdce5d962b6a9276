"""Malformed ids in URLs, query strings and forms: a 404 or a 400, never a 500.

Every id from outside is parsed once, strictly (gotv/ids.py): the `<int:...>` converter of every
route, the query parameters that name rows, the form fields that do. Hypothesis drives values
the database cannot hold, and digits Python reads differently from a database, into every route
with an integer argument.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gotv import ids
from gotv.models import Organization, User
from tests.conftest import csrf_token, login
from tests.factories import make_api_token, make_campaign, make_contact

# The values of the audit, and their kin: a superscript (a digit to str.isdigit(), not to
# int()), an Arabic-Indic digit (a digit to int()), numbers past INTEGER, signs and spaces.
NASTY = [
    "99999999999999999999999",
    "2147483648",
    "\u00b2",
    "\u0663",
    "\uff11",  # a fullwidth 1
    "-1",
    "+1",
    " 1",
    "1 ",
    "1.0",
    "1e3",
    "0x1",
    "",
    "%00",
    "1/2",
    "x" * 300,
]
INT_ARGUMENT = re.compile(r"<int:\w+>")

malformed = st.one_of(
    st.sampled_from(NASTY),
    st.integers(min_value=ids.MAX_ID + 1, max_value=10**40).map(str),
    st.integers(max_value=-1).map(str),
    st.text(min_size=1, max_size=30),
    st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=12),
)


def int_routes(app: Flask) -> list[tuple[str, str]]:
    """(method, rule) of every route with an integer argument."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if INT_ARGUMENT.search(rule.rule)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )


class Visitor:
    """An organizer signed in, with a CSRF token and an API token of their organization."""

    def __init__(self, client: FlaskClient, organizer: User) -> None:
        login(client, organizer)
        self.client = client
        self.csrf = csrf_token(client.get("/campaigns").get_data(as_text=True))
        self.api = make_api_token(organizer.organization, organizer)

    def status(self, method: str, rule: str, value: str) -> int:
        path = INT_ARGUMENT.sub(lambda _: quote(value, safe=""), rule)
        if path.startswith("/api/"):
            headers = {"Authorization": f"Bearer {self.api}"}
            response = self.client.open(path, method=method, headers=headers, json={})
        else:
            response = self.client.open(path, method=method, data={"csrf_token": self.csrf})
        with response:
            response.get_data()  # a streamed export runs to its end
            return response.status_code


@pytest.fixture
def visitor(client: FlaskClient, organization: Organization, organizer: User) -> Visitor:
    campaign = make_campaign(organization)
    make_contact(campaign)
    return Visitor(client, organizer)


def test_the_audit_found_500s_that_are_now_400s_and_404s(visitor: Visitor) -> None:
    statuses = {
        path: visitor.client.get(path).status_code
        for path in (
            "/review?campaign=%C2%B2",
            "/review?before=99999999999999999999999",
            "/audit?user=%C2%B2",
            "/campaigns/99999999999999999999999",
        )
    }

    assert statuses == {
        "/review?campaign=%C2%B2": 400,
        "/review?before=99999999999999999999999": 400,
        "/audit?user=%C2%B2": 400,
        "/campaigns/99999999999999999999999": 404,
    }


def test_every_route_with_an_integer_argument_is_known_here(app: Flask) -> None:
    # So a new route is fuzzed like the others: this list grows with the app.
    assert len(int_routes(app)) >= 60


@pytest.mark.parametrize("value", NASTY)
def test_no_route_with_an_integer_argument_answers_500_to_a_malformed_id(
    app: Flask, visitor: Visitor, value: str
) -> None:
    answered = {
        f"{method} {rule}": visitor.status(method, rule, value) for method, rule in int_routes(app)
    }

    assert {route: status for route, status in answered.items() if status >= 500} == {}
    assert set(answered.values()) <= {400, 404, 405}


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(route=st.data(), value=malformed)
def test_fuzzed_ids_in_any_route_never_answer_500(
    app: Flask, visitor: Visitor, route: st.DataObject, value: str
) -> None:
    method, rule = route.draw(st.sampled_from(int_routes(app)))

    assert visitor.status(method, rule, value) < 500


QUERY_IDS = {
    "/review": ("campaign", "texter", "tag", "error", "before"),
    "/audit": ("user", "before"),
    "/api/v1/campaigns": ("after", "limit"),
    "/api/v1/opt-outs": ("after", "limit"),
}


def query_cases() -> Iterator[tuple[str, str]]:
    for path, names in QUERY_IDS.items():
        for name in names:
            yield path, name


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.sampled_from(list(query_cases())), value=malformed)
def test_fuzzed_ids_in_query_strings_are_refused_with_400_never_500(
    visitor: Visitor, case: tuple[str, str], value: str
) -> None:
    path, name = case
    headers = {"Authorization": f"Bearer {visitor.api}"} if path.startswith("/api/") else {}

    response = visitor.client.get(path, query_string={name: value}, headers=headers)

    assert response.status_code < 500
    if value.strip() and ids.parse(value.strip()) is None:
        assert response.status_code == 400


@pytest.mark.parametrize("value", ["\u00b2", "99999999999999999999999", "-3"])
def test_a_malformed_id_in_a_form_is_refused_not_a_500(
    visitor: Visitor, organization: Organization, value: str
) -> None:
    campaign = make_campaign(organization)
    token = visitor.csrf

    invite = visitor.client.post(
        "/team/invites", data={"csrf_token": token, "role": "texter", "campaign_id": value}
    )
    reassign = visitor.client.post(
        "/review/reassign", data={"csrf_token": token, "to": "none", "contact": value}
    )
    send = visitor.client.post(
        f"/texting/{campaign.id}/send",
        data={"csrf_token": token, "contact_id": value, "idempotency_key": "k" * 20},
    )

    assert (invite.status_code, reassign.status_code) == (400, 400)
    assert send.status_code < 500
