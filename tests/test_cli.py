"""The operator commands: `flask create-org`, `create-user`, `seed-demo`, `disable-two-factor`."""

from __future__ import annotations

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from gotv.db import db
from gotv.models import (
    AuditEvent,
    Campaign,
    CampaignStatus,
    Contact,
    Organization,
    Role,
    User,
)
from tests.factories import make_org


@pytest.fixture
def cli(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def user_by_email(email: str) -> User | None:
    return db.session.scalars(select(User).where(User.email == email)).first()


def count(model: type[object]) -> int:
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def create_user(cli: FlaskCliRunner, *args: str, typed: str | None = None) -> Result:
    return cli.invoke(args=["create-user", *args], input=typed)


def test_create_org_creates_an_organization_and_prints_its_id(cli: FlaskCliRunner) -> None:
    result = cli.invoke(args=["create-org", "Vote Together"])

    assert result.exit_code == 0, result.output
    organization = db.session.scalars(select(Organization)).one()
    assert organization.name == "Vote Together"
    assert result.output == f"organization {organization.id}: Vote Together\n"


def test_create_user_takes_the_password_as_an_option(cli: FlaskCliRunner) -> None:
    organization = make_org()

    result = create_user(
        cli,
        *("--org", str(organization.id), "--email", "olivia@example.test"),
        *("--name", "Olivia", "--role", "owner", "--password", "s3cret-enough"),
    )

    assert result.exit_code == 0, result.output
    user = user_by_email("olivia@example.test")
    assert user is not None
    assert (user.organization_id, user.name, user.role) == (organization.id, "Olivia", Role.OWNER)
    assert user.check_password("s3cret-enough")


def test_create_user_prompts_for_the_password_twice(cli: FlaskCliRunner) -> None:
    organization = make_org()

    result = create_user(
        cli,
        *("--org", str(organization.id), "--email", "val@example.test", "--name", "Val"),
        typed="typed-password\ntyped-password\n",
    )

    assert result.exit_code == 0, result.output
    user = user_by_email("val@example.test")
    assert user is not None
    assert user.check_password("typed-password")


def test_create_user_makes_a_texter_unless_told_otherwise(cli: FlaskCliRunner) -> None:
    organization = make_org()

    create_user(
        cli,
        *("--org", str(organization.id), "--email", "t@example.test", "--name", "T"),
        *("--password", "pw-long-enough"),
    )

    user = user_by_email("t@example.test")
    assert user is not None and user.role == Role.TEXTER


def test_create_user_stores_no_plaintext_password(cli: FlaskCliRunner) -> None:
    organization = make_org()

    create_user(
        cli,
        *("--org", str(organization.id), "--email", "h@example.test", "--name", "H"),
        *("--password", "plain-as-day"),
    )

    user = user_by_email("h@example.test")
    assert user is not None and "plain-as-day" not in user.password_hash


def test_create_user_for_a_missing_organization_fails_cleanly(cli: FlaskCliRunner) -> None:
    missing = make_org().id + 1000

    result = create_user(
        cli,
        *("--org", str(missing), "--email", "x@example.test", "--name", "X"),
        *("--password", "pw-long-enough"),
    )

    assert result.exit_code == 1
    assert result.output == f"Error: no organization {missing}\n"
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert user_by_email("x@example.test") is None


def test_seed_demo_creates_an_organizer_volunteers_and_an_active_campaign(
    cli: FlaskCliRunner,
) -> None:
    result = cli.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    organizer, volunteer = (
        user_by_email("organizer@demo.test"),
        user_by_email("volunteer@demo.test"),
    )
    assert organizer is not None and volunteer is not None
    assert (organizer.role, volunteer.role) == (Role.OWNER, Role.TEXTER)
    assert organizer.organization_id == volunteer.organization_id
    assert organizer.check_password("demo-password")
    second = user_by_email("sam@demo.test")  # someone to hand conversations to in Review
    assert second is not None and second.organization_id == organizer.organization_id
    campaign = db.session.scalars(select(Campaign)).one()
    assert (campaign.organization_id, campaign.status) == (
        organizer.organization_id,
        CampaignStatus.ACTIVE,
    )
    assert count(Contact) == 20
    assert f"demo campaign {campaign.id}: 20 contacts" in result.output


def test_seed_demo_a_second_time_changes_nothing(cli: FlaskCliRunner) -> None:
    cli.invoke(args=["seed-demo"])

    result = cli.invoke(args=["seed-demo"])

    assert result.exit_code == 0, result.output
    assert result.output == "demo data already present\n"
    assert (count(Organization), count(User), count(Campaign), count(Contact)) == (1, 3, 1, 20)


def test_create_user_refuses_an_email_that_is_taken_whatever_its_case(app: Flask) -> None:
    runner = app.test_cli_runner()
    organization = make_org()
    args = ["create-user", "--org", str(organization.id), "--name", "Al", "--password", "pw-1234"]
    args[-1] += "567"
    assert runner.invoke(args=[*args, "--email", "al@example.test"]).exit_code == 0

    result = runner.invoke(args=[*args, "--email", "AL@Example.test"])

    assert result.exit_code != 0
    assert "already exists" in result.output


def test_disable_two_factor_turns_it_off_for_someone_who_lost_their_phone(
    cli: FlaskCliRunner,
) -> None:
    organization = make_org()
    user = User(
        organization_id=organization.id,
        email="gina@example.test",
        name="Gina",
        role=Role.OWNER,
        password_hash="x",
        totp_secret="JBSWY3DPEHPK3PXP",
        totp_last_step=1,
    )
    db.session.add(user)
    db.session.flush()

    result = cli.invoke(args=["disable-two-factor", "Gina@Example.test"])
    missing = cli.invoke(args=["disable-two-factor", "nobody@example.test"])

    assert result.exit_code == 0, result.output
    db.session.refresh(user)
    assert (user.totp_secret, user.totp_last_step) == (None, None)
    event = db.session.scalars(select(AuditEvent)).one()
    assert (event.action, event.details) == ("two_factor_disabled", {"by": "operator"})
    assert missing.exit_code != 0 and "no user with the email" in missing.output
