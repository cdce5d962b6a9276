"""Schemathesis: every operation of the OpenAPI document, against the real app and database.

The document is loaded from the app itself (/api/v1/openapi.json) and every request goes
through the app in-process (WSGI), inside this test's transaction, with a token of every scope.
A response that does not match the document (status, content type, schema), or any 5xx, fails.

Each operation gets its own Hypothesis run over `operation.as_strategy()`: schemathesis's own
pytest integration (`from_fixture` + `parametrize`) relies on pytest internals that pytest 9
dropped, and a plain loop keeps every request on this test's fixtures and transaction.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from gotv.compliance import optouts
from gotv.db import db
from gotv.models import (
    ContactImport,
    ContactStatus,
    Direction,
    MessageStatus,
    Organization,
    User,
)
from tests.factories import make_api_token, make_campaign, make_contact, make_message

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 15

pytestmark = pytest.mark.heavy  # (scripts/test runs these in a pass of their own)

UPLOAD = "POST /campaigns/{campaign_id}/imports"
VOTERS = "cell,first_name\n+12125550299,Maria\n"
# Every operation but GET /openapi.json, which schemathesis leaves out as the document itself.
OPERATIONS = [
    "GET /campaigns",
    "POST /campaigns",
    "GET /campaigns/{campaign_id}",
    "POST /campaigns/{campaign_id}/status",
    "GET /campaigns/{campaign_id}/texting-hours",
    "PUT /campaigns/{campaign_id}/texting-hours",
    "GET /campaigns/{campaign_id}/script",
    "PUT /campaigns/{campaign_id}/time-zone-rule",
    "GET /campaigns/{campaign_id}/stats",
    "POST /campaigns/{campaign_id}/imports",
    "GET /imports/{import_id}",
    "GET /campaigns/{campaign_id}/conversations",
    "GET /conversations/{contact_id}/messages",
    "GET /opt-outs",
    "POST /opt-outs",
    "GET /opt-outs/export.csv",
]


@pytest.fixture
def data(
    app: Flask,
    organization: Organization,
    organizer: User,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """A token of every scope, and rows of the organization for generated requests to find."""
    monkeypatch.setitem(app.config, "UPLOAD_DIR", str(tmp_path))
    campaign = make_campaign(organization)
    contact = make_contact(campaign, status=ContactStatus.TEXTED)
    make_message(contact, is_initial=True)
    make_message(contact, direction=Direction.INBOUND, status=MessageStatus.RECEIVED)
    optouts.record_opt_out(organization.id, "+12125550242", "admin")
    imp = ContactImport(
        organization_id=organization.id, campaign_id=campaign.id, filename="a.csv", upload_key=""
    )
    db.session.add(imp)
    db.session.flush()
    return {
        "secret": make_api_token(organization, organizer),
        "ids": {"campaign_id": campaign.id, "contact_id": contact.id, "import_id": imp.id},
    }


def test_every_operation_matches_the_openapi_document(app: Flask, data: dict[str, Any]) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {data['secret']}"}
    statuses: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        names = [parameter.name for parameter in operation.path_parameters]
        # Random ids, which name nothing (404), then the ids of the rows made above.
        statuses[operation.label] = exercise(operation, {}, headers)
        if names:
            ours = {name: data["ids"][name] for name in names}
            statuses[operation.label] += exercise(operation, ours, headers)
        if operation.label == UPLOAD:
            # Random bytes are rarely a list with a phone column: also send one that is.
            statuses[UPLOAD] += exercise(
                operation, ours, headers, body=VOTERS, media_type="text/csv"
            )

    assert sorted(statuses) == sorted(OPERATIONS)
    succeeded = {label for label, seen in statuses.items() if any(200 <= c < 300 for c in seen)}
    assert succeeded == set(OPERATIONS), statuses


def exercise(
    operation: Any, path_parameters: dict[str, int], headers: dict[str, str], **fixed: Any
) -> Counter[int]:
    """Run the operation's generated cases through every check; count the status codes.

    `fixed` pins parts of the request (body, media_type), as `as_strategy` takes them.
    """
    seen: Counter[int] = Counter()

    @given(case=operation.as_strategy(path_parameters=path_parameters, **fixed))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        seen[response.status_code] += 1

    check()
    return seen
