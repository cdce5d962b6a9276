"""Dynamic batches: volunteers take contacts in batches, never the same one, and give them back."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from gotv.compliance import optouts
from gotv.db import db
from gotv.models import Campaign, Contact, ContactStatus, Organization, User, utcnow
from gotv.texting import assignment, texts
from tests.conftest import csrf_token, login
from tests.factories import make_campaign, make_contact, make_org, make_user
from workers.texting import release_idle_batches

pytestmark = pytest.mark.usefixtures("weekday_morning")


def campaign_with(organization: Organization, contacts: int, **fields: object) -> Campaign:
    campaign = make_campaign(organization, **fields)
    for number in range(contacts):
        make_contact(campaign, cell=f"+1212555{number:04d}")
    return campaign


def held_by(user: User) -> set[int]:
    return set(
        db.session.scalars(
            select(Contact.id).where(
                Contact.texter_id == user.id, Contact.status == ContactStatus.NEW
            )
        )
    )


def test_a_batch_is_the_campaigns_batch_size_in_list_order(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 12, batch_size=5)

    taken = assignment.take_batch(campaign, volunteer, utcnow())

    first_five = db.session.scalars(
        select(Contact.id).where(Contact.campaign_id == campaign.id).order_by(Contact.id).limit(5)
    ).all()
    assert taken == 5 and held_by(volunteer) == set(first_five)
    assert all(
        contact.assigned_at is not None
        for contact in db.session.scalars(select(Contact).where(Contact.id.in_(first_five)))
    )


def test_asking_again_tops_the_batch_up_to_its_size_and_no_further(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 12, batch_size=5)
    assignment.take_batch(campaign, volunteer, utcnow())

    assert assignment.take_batch(campaign, volunteer, utcnow()) == 0
    assert len(held_by(volunteer)) == 5


def test_two_volunteers_never_get_the_same_contact(organization: Organization) -> None:
    campaign = campaign_with(organization, 8, batch_size=5)
    first, second = make_user(organization), make_user(organization)

    assignment.take_batch(campaign, first, utcnow())
    assignment.take_batch(campaign, second, utcnow())

    assert len(held_by(first)) == 5 and len(held_by(second)) == 3
    assert not held_by(first) & held_by(second)


def test_opted_out_and_blocked_numbers_are_never_taken(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 3)
    optouts.record_opt_out(organization.id, "+12125550000", "admin", None)
    optouts.block_number(organization.id, "+12125550001", 30006, "landline")

    assert assignment.take_batch(campaign, volunteer, utcnow()) == 1


def test_contacts_in_quiet_hours_are_left_for_later(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 2)
    make_contact(campaign, time_zones="Pacific/Honolulu", state="HI", zip="96813")  # 6 am there

    assert assignment.take_batch(campaign, volunteer, utcnow()) == 2


def test_it_refuses_a_new_batch_while_replies_wait(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 3)
    make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED, needs_reply=True)

    with pytest.raises(assignment.BatchRefused, match="1 person is waiting for your reply"):
        assignment.take_batch(campaign, volunteer, utcnow())
    assert held_by(volunteer) == set()


def test_a_campaign_may_allow_a_new_batch_while_replies_wait(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 3, batch_while_replies_wait=True)
    make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED, needs_reply=True)

    assert assignment.take_batch(campaign, volunteer, utcnow()) == 3


def test_im_done_gives_unsent_contacts_back_and_keeps_conversations(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 4)
    texted = make_contact(campaign, texter_id=volunteer.id, status=ContactStatus.TEXTED)
    login(client, volunteer)
    page = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    client.post(f"/texting/{campaign.id}/batch", data={"csrf_token": csrf_token(page)})
    assert len(held_by(volunteer)) == 4

    response = client.post(
        f"/texting/{campaign.id}/batch/release", data={"csrf_token": csrf_token(page)}
    )

    assert response.status_code == 302
    assert held_by(volunteer) == set()
    db.session.refresh(texted)
    assert texted.texter_id == volunteer.id


def test_an_idle_volunteers_batch_goes_back_after_the_campaigns_idle_time(
    app: Flask, organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 3, release_after_minutes=30)
    busy = make_user(organization)
    busy_campaign = campaign_with(organization, 0, release_after_minutes=30)
    make_contact(busy_campaign)
    start = utcnow()
    assignment.take_batch(campaign, volunteer, start - timedelta(minutes=31))
    assignment.take_batch(busy_campaign, busy, start - timedelta(minutes=31))
    assignment.touch(busy, start - timedelta(minutes=2))  # sent a text two minutes ago
    db.session.flush()

    released = release_idle_batches()

    assert released == 3
    assert held_by(volunteer) == set() and len(held_by(busy)) == 1


def test_a_volunteer_idle_less_than_the_idle_time_keeps_their_batch(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with(organization, 3, release_after_minutes=30)
    assignment.take_batch(campaign, volunteer, utcnow() - timedelta(minutes=29))
    db.session.flush()

    assert assignment.release_idle(utcnow()) == 0
    assert len(held_by(volunteer)) == 3


def test_an_organizer_sets_the_batch_size_idle_time_and_replies_rule(
    client: FlaskClient, organizer: User
) -> None:
    campaign = make_campaign(organizer.organization)
    login(client, organizer)
    page = client.get(f"/campaigns/{campaign.id}").get_data(as_text=True)
    assert 'id="batch-settings"' in page

    client.post(
        f"/campaigns/{campaign.id}/batches",
        data={
            "csrf_token": csrf_token(page),
            "batch_size": "50",
            "release_after_minutes": "20",
            "batch_while_replies_wait": "y",
        },
    )

    db.session.refresh(campaign)
    assert (campaign.batch_size, campaign.release_after_minutes) == (50, 20)
    assert campaign.batch_while_replies_wait


@pytest.mark.skipif(
    "postgresql" not in __import__("os").environ.get("GOTV_TEST_DATABASE_URL", ""),
    reason="row locks (FOR UPDATE SKIP LOCKED) are PostgreSQL's",
)
def test_volunteers_asking_at_the_same_moment_never_share_a_contact_on_postgresql(
    app: Flask,
) -> None:
    """Eight volunteers ask at once, each in their own connection and transaction."""
    original, engine = db.session, db.engine
    db.session = sa.orm.scoped_session(sa.orm.sessionmaker(bind=engine))
    try:
        organization = make_org()
        campaign = campaign_with(organization, 100, batch_size=15)
        users = [make_user(organization) for _ in range(8)]
        db.session.commit()
        ids = [user.id for user in users]
        start = threading.Barrier(len(ids))
        errors: list[BaseException] = []

        def take(user_id: int) -> None:
            try:
                with app.app_context():
                    user = db.session.get(User, user_id)
                    mine = db.session.get(Campaign, campaign.id)
                    assert user is not None and mine is not None
                    start.wait()
                    assignment.take_batch(mine, user, utcnow())
                    db.session.commit()
            except BaseException as error:  # noqa: BLE001  (reported below)
                errors.append(error)
            finally:
                db.session.remove()

        threads = [threading.Thread(target=take, args=(user_id,)) for user_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        holders = db.session.execute(
            select(Contact.id, Contact.texter_id).where(Contact.campaign_id == campaign.id)
        ).all()
        taken = [texter for _, texter in holders if texter is not None]
        assert len(taken) == 100  # 8 x 15 wanted, 100 there: all taken, each once
        assert all(taken.count(user_id) <= 15 for user_id in ids)
    finally:
        db.session.rollback()
        with engine.begin() as connection:
            connection.execute(sa.delete(Contact).where(Contact.campaign_id == campaign.id))
            connection.execute(sa.delete(Campaign).where(Campaign.id == campaign.id))
            connection.execute(sa.delete(User).where(User.organization_id == organization.id))
            connection.execute(sa.delete(Organization).where(Organization.id == organization.id))
        db.session.remove()
        db.session = original


@pytest.mark.skipif(
    "postgresql" not in __import__("os").environ.get("GOTV_TEST_DATABASE_URL", ""),
    reason="advisory locks are PostgreSQL's",
)
def test_while_another_batch_is_being_taken_a_batch_is_a_run_of_the_list_from_anywhere(
    organization: Organization, volunteer: User
) -> None:
    """Concurrent picks start at random places (they would step over each other from the top);
    each is still a run of consecutive free contacts, wrapping around the end of the list."""
    campaign = campaign_with(organization, 12, batch_size=5)
    ids = list(
        db.session.scalars(
            select(Contact.id).where(Contact.campaign_id == campaign.id).order_by(Contact.id)
        )
    )
    with db.engine.connect() as other, other.begin():
        other.execute(sa.text("SELECT pg_advisory_xact_lock(6, :id)"), {"id": campaign.id})

        taken = assignment.take_batch(campaign, volunteer, utcnow())

    runs = [set((ids + ids)[start : start + 5]) for start in range(len(ids))]
    assert taken == 5 and held_by(volunteer) in runs


def test_the_places_of_untexted_contacts_are_listed_once_each_and_texted_ones_left_out(
    organization: Organization,
) -> None:
    campaign = make_campaign(organization)
    for _ in range(3):
        make_contact(campaign, time_zones="America/New_York", rule_states="NY")
    make_contact(campaign, time_zones="America/Chicago", rule_states="TX")
    make_contact(
        campaign, time_zones="Pacific/Honolulu", rule_states="HI", status=ContactStatus.TEXTED
    )
    make_contact(make_campaign(organization), time_zones="America/Denver", rule_states="CO")
    db.session.commit()

    places = texts.untexted_places(campaign.id)

    assert places == [("America/Chicago", "TX"), ("America/New_York", "NY")]


def test_the_send_screen_says_when_the_pool_opens_only_when_nobody_may_be_texted_now(
    client: FlaskClient, organization: Organization, volunteer: User
) -> None:
    campaign = make_campaign(organization)
    make_contact(campaign, time_zones="Pacific/Honolulu", rule_states="HI")  # 6 am there
    db.session.commit()
    login(client, volunteer)

    asleep = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)
    make_contact(campaign)  # New York, 11 am
    db.session.commit()
    awake = client.get(f"/texting/{campaign.id}/send").get_data(as_text=True)

    # 19:00 UTC, shown in the organization's zone (New York unless it chose another).
    assert "1 person opens at 9:00 AM their time" in asleep and "14:00 EST" in asleep
    assert "opens at 9:00 AM" not in awake and "Press “Get 200 contacts” below to start" in awake


# --- Numbers the policy refuses: set aside, never stuck in a batch ----------------------------

PUERTO_RICO = ["+17875550231", "+17875550232", "+17875550233"]


def campaign_with_territory_numbers_first(organization: Organization) -> Campaign:
    """Three Puerto Rico numbers (loaded while the organization texted the territories), then
    three of New York, in list order; batches of three."""
    campaign = make_campaign(organization, batch_size=3)
    for cell in PUERTO_RICO:
        make_contact(campaign, cell=cell)
    for number in range(3):
        make_contact(campaign, cell=f"+1212555{number:04d}")
    return campaign


def set_aside(campaign: Campaign) -> dict[str, str | None]:
    return dict(
        db.session.execute(
            select(Contact.cell, Contact.refused).where(
                Contact.campaign_id == campaign.id, Contact.refused.is_not(None)
            )
        ).all()
    )


def test_numbers_the_policy_refuses_are_set_aside_and_others_taken_in_their_place(
    organization: Organization, volunteer: User
) -> None:
    campaign = campaign_with_territory_numbers_first(organization)

    taken = assignment.take_batch(campaign, volunteer, utcnow())

    held = db.session.scalars(select(Contact.cell).where(Contact.id.in_(held_by(volunteer))))
    assert taken == 3 and sorted(held) == ["+12125550000", "+12125550001", "+12125550002"]
    assert set_aside(campaign) == dict.fromkeys(PUERTO_RICO, "us_territory")
    assert assignment.take_batch(campaign, make_user(organization), utcnow()) == 0


def test_a_batch_the_organization_stopped_texting_frees_the_volunteer_for_a_new_one(
    organization: Organization, volunteer: User
) -> None:
    organization.texts_us_territories = True
    campaign = campaign_with_territory_numbers_first(organization)
    assignment.take_batch(campaign, volunteer, utcnow())  # the three Puerto Rico numbers
    organization.texts_us_territories = False

    shown = assignment.batch(campaign, volunteer, utcnow())

    assert (shown.ready, shown.held) == ([], 0)
    assert assignment.take_batch(campaign, volunteer, utcnow()) == 3
    assert [c.cell for c in assignment.batch(campaign, volunteer, utcnow()).ready] == [
        "+12125550000",
        "+12125550001",
        "+12125550002",
    ]


def test_the_send_loops_top_up_sets_aside_what_it_passes_over(
    organization: Organization, volunteer: User
) -> None:
    organization.texts_us_territories = True
    campaign = campaign_with_territory_numbers_first(organization)
    campaign.batch_size = 6
    assignment.take_batch(campaign, volunteer, utcnow())
    organization.texts_us_territories = False

    ready, _ = assignment.next_ready(campaign, volunteer, utcnow(), after=0, limit=2)

    assert [row.cell for row in ready] == ["+12125550000", "+12125550001"]
    assert set_aside(campaign) == dict.fromkeys(PUERTO_RICO, "us_territory")
    assert assignment.held(campaign, volunteer) == 3


def test_texting_the_territories_again_puts_their_numbers_back_in_the_pool(
    client: FlaskClient, organizer: User, volunteer: User
) -> None:
    campaign = campaign_with_territory_numbers_first(organizer.organization)
    other = campaign_with_territory_numbers_first(make_org())
    assignment.take_batch(campaign, volunteer, utcnow())
    assignment.take_batch(other, make_user(other.organization), utcnow())
    login(client, organizer)
    page = client.get("/settings").get_data(as_text=True)

    client.post(
        "/settings",
        data={"csrf_token": csrf_token(page), "name": "Vote Together", "help_text": "Hi"}
        | {"texts_us_territories": "y"},
    )

    assert set_aside(campaign) == {}
    assert set_aside(other) == dict.fromkeys(PUERTO_RICO, "us_territory")
    assert assignment.take_batch(campaign, make_user(organizer.organization), utcnow()) == 3
