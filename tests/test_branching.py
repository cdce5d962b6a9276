"""Scripts that branch (interaction steps): questions after answers, the script after each
answer, the path a contact takes, and what volunteers and organizers see of them."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from gotv.campaigns import content
from gotv.db import db
from gotv.models import (
    AuditEvent,
    Campaign,
    Contact,
    ContactStatus,
    Organization,
    SurveyAnswer,
    SurveyChoice,
    SurveyQuestion,
    User,
)
from tests.conftest import csrf_token, login
from tests.factories import make_api_token, make_campaign, make_contact, make_question

JSON = {"Accept": "application/json"}


@pytest.fixture
def campaign(organization: Organization) -> Campaign:
    return make_campaign(organization, custom_field_names=["polling_place"])


@pytest.fixture
def contact(campaign: Campaign, volunteer: User) -> Contact:
    return make_contact(
        campaign,
        first_name="Ana",
        texter_id=volunteer.id,
        custom_fields={"polling_place": "the library"},
    )


def choice(question: SurveyQuestion, label: str) -> SurveyChoice:
    return next(c for c in question.choices if c.label == label)


@pytest.fixture
def early(campaign: Campaign) -> SurveyQuestion:
    """Will you vote early? Yes leads to a script and to "Need a ride?"."""
    question = make_question(campaign, "Will you vote early?", ("Yes", "No"))
    choice(question, "Yes").scripts = [
        "Great, {first_name}! Early voting is at {polling_place}.",
        "Wonderful, {first_name}: {polling_place} is open from 8.",
    ]
    db.session.flush()
    return question


@pytest.fixture
def ride(campaign: Campaign, early: SurveyQuestion, organizer: User) -> SurveyQuestion:
    return content.add_question(
        campaign, "Need a ride?", "Yes\nNo", organizer, after=choice(early, "Yes")
    )


def answers(contact: Contact) -> dict[str, str]:
    """The contact's answers as question text -> label."""
    rows = db.session.execute(
        select(SurveyQuestion.text, SurveyChoice.label)
        .join(SurveyAnswer, SurveyAnswer.question_id == SurveyQuestion.id)
        .join(SurveyChoice, SurveyChoice.id == SurveyAnswer.choice_id)
        .where(SurveyAnswer.contact_id == contact.id)
    )
    return {text: label for text, label in rows}


# --- The tree ----------------------------------------------------------------------------------


def test_a_question_after_an_answer_sits_under_it_in_tree_order(
    campaign: Campaign, early: SurveyQuestion, ride: SurveyQuestion, organizer: User
) -> None:
    make_question(campaign, "Will you volunteer?", ("Yes", "No"))

    ordered = [q.text for q in content.questions(campaign)]
    tree = content.tree(campaign)

    assert ordered == ["Will you vote early?", "Need a ride?", "Will you volunteer?"]
    assert [q.text for q in tree.top] == ["Will you vote early?", "Will you volunteer?"]
    assert tree.following(choice(early, "Yes").id) == [ride]
    assert tree.following(choice(early, "No").id) == []


def test_an_answer_of_another_campaign_cannot_lead_to_a_question(
    organization: Organization, campaign: Campaign, organizer: User
) -> None:
    elsewhere = make_question(make_campaign(organization), "Elsewhere?", ("Yes", "No"))

    with pytest.raises(content.ContentError, match="not part of this campaign"):
        content.add_question(campaign, "Q?", "A\nB", organizer, after=elsewhere.choices[0])


def test_moving_a_question_moves_it_among_those_after_the_same_answer(
    campaign: Campaign, early: SurveyQuestion, ride: SurveyQuestion, organizer: User
) -> None:
    yes = choice(early, "Yes")
    second = content.add_question(campaign, "Want a yard sign?", "Yes\nNo", organizer, after=yes)

    content.move_question(second, -1, organizer)
    content.move_question(early, 1, organizer)  # alone at the top: nothing moves

    assert [q.text for q in content.tree(campaign).following(yes.id)] == [
        "Want a yard sign?",
        "Need a ride?",
    ]
    assert [q.text for q in content.tree(campaign).top] == ["Will you vote early?"]


def test_deleting_an_unanswered_question_deletes_the_questions_after_its_answers(
    campaign: Campaign, early: SurveyQuestion, ride: SurveyQuestion, organizer: User
) -> None:
    assert content.delete_question(early, organizer) is True

    assert db.session.scalar(select(func.count()).select_from(SurveyQuestion)) == 0
    assert db.session.scalar(select(func.count()).select_from(SurveyChoice)) == 0


def test_a_question_whose_branch_has_answers_is_retired_and_keeps_them(
    campaign: Campaign,
    contact: Contact,
    early: SurveyQuestion,
    ride: SurveyQuestion,
    volunteer: User,
    organizer: User,
) -> None:
    content.record_answer(contact, early.id, choice(early, "Yes").id, volunteer)
    content.record_answer(contact, ride.id, choice(ride, "No").id, volunteer)

    assert content.delete_question(early, organizer) is False

    assert content.questions(campaign) == []  # volunteers see neither
    assert [q.text for q in content.questions(campaign, include_retired=True)] == [
        "Will you vote early?",
        "Need a ride?",
    ]
    assert answers(contact) == {"Will you vote early?": "Yes", "Need a ride?": "No"}
    assert not content.survey(campaign)


def test_deleting_an_answer_nobody_chose_deletes_the_questions_after_it(
    campaign: Campaign,
    contact: Contact,
    early: SurveyQuestion,
    ride: SurveyQuestion,
    volunteer: User,
    organizer: User,
) -> None:
    content.record_answer(contact, early.id, choice(early, "No").id, volunteer)
    maybe = content.add_choice(early, "Maybe", organizer)
    content.add_question(campaign, "When?", "Soon\nLater", organizer, after=maybe)

    with pytest.raises(content.ContentError, match="chose “No”: rename it instead"):
        content.delete_choice(choice(early, "No"), organizer)
    content.delete_choice(maybe, organizer)

    assert [q.text for q in content.questions(campaign)] == ["Will you vote early?", "Need a ride?"]
    assert [c.label for c in early.choices] == ["Yes", "No"]


# --- The script after an answer ------------------------------------------------------------------


def test_scripts_with_unknown_merge_fields_are_refused_and_nothing_changes(
    campaign: Campaign, early: SurveyQuestion, organizer: User
) -> None:
    yes = choice(early, "Yes")
    before = list(yes.scripts)

    with pytest.raises(content.ContentError, match=r"Unknown merge field: \{precinct\}"):
        content.save_scripts(yes, campaign, ["At {precinct}"], organizer)

    assert yes.scripts == before


def test_blank_wordings_are_dropped_and_too_many_are_refused(
    campaign: Campaign, early: SurveyQuestion, organizer: User
) -> None:
    no = choice(early, "No")

    content.save_scripts(no, campaign, ["", "  Thanks anyway, {first_name}.  ", ""], organizer)

    assert no.scripts == ["Thanks anyway, {first_name}."]
    with pytest.raises(content.ContentError, match="at most 5 wordings"):
        content.save_scripts(no, campaign, [f"Wording {n}" for n in range(6)], organizer)
    audited = db.session.scalars(select(AuditEvent.action)).all()
    assert audited.count("branch_script_changed") == 1


# --- Recording answers along the path ----------------------------------------------------------


def test_the_path_shows_the_questions_after_each_answer_given(
    campaign: Campaign, contact: Contact, early: SurveyQuestion, ride: SurveyQuestion
) -> None:
    survey = content.survey(campaign)

    before = survey.path({})
    after_yes = survey.path({early.id: choice(early, "Yes").id})
    after_no = survey.path({early.id: choice(early, "No").id})

    assert [step.question.text for step in before] == ["Will you vote early?"]
    assert [(s.question.text, s.depth, s.after) for s in after_yes] == [
        ("Will you vote early?", 0, ""),
        ("Need a ride?", 1, "Yes"),
    ]
    assert [step.question.text for step in after_no] == ["Will you vote early?"]


def test_an_answer_gives_the_script_after_it_filled_in_for_the_contact(
    campaign: Campaign, contact: Contact, early: SurveyQuestion, volunteer: User
) -> None:
    answer = content.record_answer(contact, early.id, choice(early, "Yes").id, volunteer)

    assert answer is not None
    assert content.follow_up(content.survey(campaign), answer.choice_id, contact, volunteer) == [
        "Great, Ana! Early voting is at the library.",
        "Wonderful, Ana: the library is open from 8.",
    ]


def test_a_question_after_an_answer_needs_that_answer_first(
    contact: Contact, early: SurveyQuestion, ride: SurveyQuestion, volunteer: User
) -> None:
    with pytest.raises(content.ContentError, match="follows “Yes” to “Will you vote early\\?”"):
        content.record_answer(contact, ride.id, choice(ride, "Yes").id, volunteer)

    content.record_answer(contact, early.id, choice(early, "No").id, volunteer)
    with pytest.raises(content.ContentError):
        content.record_answer(contact, ride.id, choice(ride, "Yes").id, volunteer)


def test_changing_an_answer_clears_the_answers_of_the_branch_left_behind(
    contact: Contact, early: SurveyQuestion, ride: SurveyQuestion, volunteer: User
) -> None:
    content.record_answer(contact, early.id, choice(early, "Yes").id, volunteer)
    content.record_answer(contact, ride.id, choice(ride, "Yes").id, volunteer)

    content.record_answer(contact, early.id, choice(early, "No").id, volunteer)

    assert answers(contact) == {"Will you vote early?": "No"}
    cleared = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "survey_answer_cleared")
    ).one()
    assert cleared.details["question"] == "Need a ride?"
    assert "Will you vote early?" in cleared.details["because"]


def test_the_path_taken_reads_as_words_for_exports(
    campaign: Campaign, early: SurveyQuestion, ride: SurveyQuestion
) -> None:
    ordered = content.questions(campaign, include_retired=True)
    path = content.path_labels(ordered)

    assert path(["Yes", "No"]) == "Will you vote early?: Yes › Need a ride?: No"
    assert path(["No", None]) == "Will you vote early?: No"
    assert path([None, None]) == ""


def test_the_dashboard_counts_answers_in_tree_order_with_the_answer_each_follows(
    campaign: Campaign,
    contact: Contact,
    early: SurveyQuestion,
    ride: SurveyQuestion,
    volunteer: User,
) -> None:
    content.record_answer(contact, early.id, choice(early, "Yes").id, volunteer)
    content.record_answer(contact, ride.id, choice(ride, "No").id, volunteer)

    results = content.survey_results(db.session, campaign)

    assert [(r.text, r.depth, r.after, r.total) for r in results] == [
        ("Will you vote early?", 0, "", 1),
        ("Need a ride?", 1, "“Yes” to “Will you vote early?”", 1),
    ]


# --- On the pages ------------------------------------------------------------------------------


def test_a_volunteer_records_an_answer_and_gets_the_next_script_and_questions_as_json(
    client: FlaskClient,
    contact: Contact,
    early: SurveyQuestion,
    ride: SurveyQuestion,
    volunteer: User,
) -> None:
    login(client, volunteer)
    token = csrf_token(client.get(f"/texting/conversations/{contact.id}").text)

    response = client.post(
        f"/texting/conversations/{contact.id}/answers",
        data={"csrf_token": token, "question_id": early.id, "choice_id": choice(early, "Yes").id},
        headers=JSON,
    )

    body = response.get_json()
    assert response.status_code == 200 and body["message"] == "Answer saved."
    assert body["scripts"][0] == "Great, Ana! Early voting is at the library."
    assert "Need a ride?" in body["survey_html"]
    assert "Asked after “Yes”." in body["survey_html"]


def test_without_javascript_the_answer_puts_its_script_in_the_reply_box(
    client: FlaskClient, contact: Contact, early: SurveyQuestion, volunteer: User
) -> None:
    login(client, volunteer)
    token = csrf_token(client.get(f"/texting/conversations/{contact.id}").text)

    saved = client.post(
        f"/texting/conversations/{contact.id}/answers",
        data={"csrf_token": token, "question_id": early.id, "choice_id": choice(early, "Yes").id},
    )
    page = client.get(saved.headers["Location"]).text

    assert saved.headers["Location"].endswith(f"?script={choice(early, 'Yes').id}")
    reply_box = '<textarea id="body" name="body" maxlength="1600" required rows="3"'
    assert reply_box + ' aria-describedby="reply-hint">Great, Ana!' in page
    assert 'data-script-body="Wonderful, Ana: the library is open from 8."' in page


def test_an_organizer_builds_a_branch_on_the_campaign_page_in_place(
    client: FlaskClient, organizer: User, campaign: Campaign, early: SurveyQuestion
) -> None:
    login(client, organizer)
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").text)
    yes = choice(early, "Yes")

    added = client.post(
        f"/campaigns/{campaign.id}/questions",
        data={
            "csrf_token": token,
            "text": "Need a ride?",
            "choices": "Yes\nNo",
            "after_choice_id": yes.id,
        },
        headers=JSON,
    )
    scripts = client.post(
        f"/campaigns/{campaign.id}/questions/{early.id}/choices/{yes.id}/scripts",
        data={"csrf_token": token, "scripts": ["See you at {polling_place}!", ""]},
        headers=JSON,
    )

    assert added.status_code == 200 and added.get_json()["ok"]
    assert "Need a ride?" in added.get_json()["sections"]["questions"]
    assert added.get_json()["marks"]["questions"]["state"] == "done"
    assert scripts.get_json()["message"] == "Script after “Yes” saved."
    db.session.expire_all()
    ride = db.session.scalars(select(SurveyQuestion).where(SurveyQuestion.text == "Need a ride?"))
    assert ride.one().parent_choice_id == yes.id
    assert db.session.get(SurveyChoice, yes.id).scripts == ["See you at {polling_place}!"]


def test_a_refused_branch_script_keeps_what_was_typed(
    client: FlaskClient, organizer: User, campaign: Campaign, early: SurveyQuestion
) -> None:
    login(client, organizer)
    token = csrf_token(client.get(f"/campaigns/{campaign.id}").text)
    yes = choice(early, "Yes")
    url = f"/campaigns/{campaign.id}/questions/{early.id}/choices/{yes.id}/scripts"
    typed = {
        "csrf_token": token,
        "scripts": "Vote at {precinct}!",
        "_form": f"form-scripts-{yes.id}",
    }

    as_json = client.post(url, data=typed, headers=JSON)
    as_page = client.post(url, data=typed)

    assert as_json.status_code == 422
    assert as_json.get_json() == {
        "ok": False,
        "message": "Unknown merge field: {precinct}.",
        "field": "",
    }
    assert as_page.status_code == 422
    assert ">Vote at {precinct}!</textarea>" in as_page.text
    assert "Unknown merge field: {precinct}" in as_page.text
    db.session.expire_all()
    assert db.session.get(SurveyChoice, yes.id).scripts[0].startswith("Great, {first_name}!")


# --- In the API ----------------------------------------------------------------------------------


def test_the_api_gives_the_script_as_a_tree(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    campaign: Campaign,
    early: SurveyQuestion,
    ride: SurveyQuestion,
) -> None:
    secret = make_api_token(organization, organizer, ["campaigns:read"])

    body = client.get(
        f"/api/v1/campaigns/{campaign.id}/script", headers={"Authorization": f"Bearer {secret}"}
    ).get_json()

    assert body["first_message"] == campaign.script
    (question,) = body["questions"]
    yes, no = question["choices"]
    assert (question["text"], yes["label"], no["label"]) == ("Will you vote early?", "Yes", "No")
    assert yes["scripts"][0] == "Great, {first_name}! Early voting is at {polling_place}."
    assert [q["text"] for q in yes["questions"]] == ["Need a ride?"]
    assert no["questions"] == []


def test_the_api_gives_each_conversations_answers_and_path_and_the_counts_in_stats(
    client: FlaskClient,
    organization: Organization,
    organizer: User,
    campaign: Campaign,
    contact: Contact,
    early: SurveyQuestion,
    ride: SurveyQuestion,
    volunteer: User,
) -> None:
    contact.status = ContactStatus.TEXTED
    content.record_answer(contact, early.id, choice(early, "Yes").id, volunteer)
    content.record_answer(contact, ride.id, choice(ride, "No").id, volunteer)
    secret = make_api_token(organization, organizer)
    auth = {"Authorization": f"Bearer {secret}"}

    (conversation,) = client.get(
        f"/api/v1/campaigns/{campaign.id}/conversations", headers=auth
    ).get_json()["data"]
    stats = client.get(f"/api/v1/campaigns/{campaign.id}/stats", headers=auth).get_json()

    assert [(a["question"], a["choice"]) for a in conversation["answers"]] == [
        ("Will you vote early?", "Yes"),
        ("Need a ride?", "No"),
    ]
    assert conversation["path"] == "Will you vote early?: Yes › Need a ride?: No"
    assert [(s["question"], s["after"], s["depth"]) for s in stats["survey"]] == [
        ("Will you vote early?", None, 0),
        ("Need a ride?", "“Yes” to “Will you vote early?”", 1),
    ]
    assert stats["survey"][1]["choices"] == [
        {"label": "Yes", "count": 0},
        {"label": "No", "count": 1},
    ]
