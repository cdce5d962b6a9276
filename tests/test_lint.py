"""First-message linting: say who is texting and how to stop."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from gotv.compliance import lint
from gotv.db import db
from gotv.models import User
from tests.conftest import csrf_token, login
from tests.factories import make_campaign


@pytest.mark.parametrize(
    "script",
    [
        "Hi {first_name}, it's {texter_name}. Will you vote? Reply STOP to opt out.",
        "Hi {first_name}, this is Vote Together. Text STOP to end these messages.",
        "Hola {first_name}, soy {texter_name}. Responde ALTO para no recibir más.",
    ],
)
def test_a_first_message_that_names_the_sender_and_says_how_to_stop_passes(script: str) -> None:
    assert lint.warnings(script, "Vote Together") == []


def test_it_warns_when_nobody_is_named() -> None:
    found = lint.warnings("Hi {first_name}! Vote Tuesday. Reply STOP to opt out.", "Vote Together")

    assert len(found) == 1 and "Say who is texting" in found[0]


def test_it_warns_when_there_is_no_way_to_stop() -> None:
    found = lint.warnings("Hi {first_name}, it's {texter_name}. Vote Tuesday!", "Vote Together")

    assert len(found) == 1 and "Reply STOP to opt out." in found[0]


def test_appending_opt_out_language_is_idempotent() -> None:
    once = lint.with_opt_out_language("Hi {first_name}!")

    assert once == "Hi {first_name}! Reply STOP to opt out."
    assert lint.with_opt_out_language(once) == once


def test_the_organizer_appends_the_opt_out_sentence_with_one_click(
    client: FlaskClient, organizer: User
) -> None:
    campaign = make_campaign(organizer.organization, script="Hi {first_name}, it's {texter_name}.")
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert "Tell people how to stop" in page

    client.post(
        f"/campaigns/{campaign.id}/script/opt-out-language", data={"csrf_token": csrf_token(page)}
    )

    db.session.refresh(campaign)
    assert campaign.script == "Hi {first_name}, it's {texter_name}. Reply STOP to opt out."
