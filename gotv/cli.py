"""`flask` commands for operators: organizations, users, two-step sign-in and the demo data."""

from __future__ import annotations

from pathlib import Path

import click
from flask import Flask, current_app
from sqlalchemy import select

from gotv import encryption
from gotv.db import db
from gotv.edge import queue
from gotv.lists import imports
from gotv.models import (
    Campaign,
    CampaignStatus,
    CannedResponse,
    ContactImport,
    ImportMode,
    Organization,
    Role,
    Sender,
    Tag,
    TwilioAccount,
    User,
)
from gotv.people import audit, passwords
from gotv.texting import senders

DEMO_LIST = Path(__file__).parent / "demo" / "voters.csv"
DEMO_WHERE_TO_VOTE = (
    "{first_name}, you can look up your polling place at vote.org. Polls are open 7am to 8pm."
)
DEMO_SCRIPT = (
    "Hi {first_name}, it's {texter_name}, a volunteer with Vote Together. Election day is "
    "Tuesday, Nov 3. Do you know where your polling place is? Reply STOP to opt out."
)


def init_app(app: Flask) -> None:
    app.cli.add_command(create_org)
    app.cli.add_command(create_user)
    app.cli.add_command(seed_demo)
    app.cli.add_command(disable_two_factor)
    app.cli.add_command(rotate_secrets)
    app.cli.add_command(create_subaccount)
    app.cli.add_command(failed_jobs)


@click.command("create-org")
@click.argument("name")
def create_org(name: str) -> None:
    """Create an organization and print its id."""
    organization = Organization(name=name)
    db.session.add(organization)
    db.session.commit()
    click.echo(f"organization {organization.id}: {name}")


@click.command("create-user")
@click.option("--org", "organization_id", type=int, required=True, help="Organization id.")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.TEXTER.value)
@click.password_option()
def create_user(organization_id: int, email: str, name: str, role: str, password: str) -> None:
    """Create a user in an organization (prompts for the password, which must follow the
    same rule as on the web)."""
    trouble = passwords.problem(password)
    if trouble:
        raise click.ClickException(f"that password will not do: {trouble}")
    if db.session.get(Organization, organization_id) is None:
        raise click.ClickException(f"no organization {organization_id}")
    user = User(organization_id=organization_id, email=email, name=name, role=Role(role))
    if db.session.scalars(select(User).where(User.email == user.email)).first():
        raise click.ClickException(f"a user with the email {user.email} already exists")
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    click.echo(f"user {user.id}: {email} ({role})")


@click.command("disable-two-factor")
@click.argument("email")
def disable_two_factor(email: str) -> None:
    """Turn off two-step sign-in for someone who lost their authenticator app. Audited."""
    user = db.session.scalars(select(User).where(User.email == email.strip().lower())).first()
    if user is None:
        raise click.ClickException(f"no user with the email {email}")
    user.totp_secret = None
    user.totp_last_step = None
    audit.record(user.organization_id, "two_factor_disabled", user.email, by="operator")
    db.session.commit()
    click.echo(f"two-step sign-in is off for {user.email}")


@click.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt every secret stored with an older key with the first of ENCRYPTION_KEYS."""
    tables = [
        table
        for table in db.metadata.sorted_tables
        if any(isinstance(column.type, encryption.Encrypted) for column in table.columns)
    ]
    rotated = encryption.rotate_all(db.session, tables)
    db.session.commit()
    click.echo(f"re-encrypted {rotated} secrets with the newest key")


@click.command("create-subaccount")
@click.option("--org", "organization_id", type=int, required=True, help="Organization id.")
def create_subaccount(organization_id: int) -> None:
    """Give an organization a new Twilio subaccount of the instance's account, as its own."""
    try:
        account = senders.create_subaccount(organization_id)
    except senders.SenderRefused as refusal:
        raise click.ClickException(str(refusal)) from refusal
    db.session.commit()
    click.echo(
        f"organization {organization_id} now texts through subaccount {account.account_sid}: "
        "buy or move numbers into it, register them for A2P 10DLC, and add them as senders"
    )


@click.command("failed-jobs")
@click.option("--limit", default=50, show_default=True)
def failed_jobs(limit: int) -> None:
    """List the most recent failed background jobs of every organization (for operators)."""
    jobs = queue.failed_jobs(queue.EVERY_ORGANIZATION, limit)
    if jobs is None:
        raise click.ClickException("Redis cannot be reached")
    for job in jobs:
        ended = job.ended_at.isoformat(timespec="seconds") if job.ended_at else "?"
        click.echo(f"{ended}  {job.queue:8} {job.function}  {job.error}")
    if not jobs:
        click.echo("no failed jobs")


@click.command("seed-demo")
@click.option("--password", default="demo-password", show_default=True)
@click.option(
    "--second-account",
    metavar="SID:TOKEN:NUMBER",
    help="also a second organization texting through this Twilio account and number of its "
    "own (the demo's fake carrier plays it), with the same voters",
)
def seed_demo(password: str, second_account: str | None) -> None:
    """Create the demo organization, an organizer, two volunteers and an active campaign with a
    canned response, and a tag (once); with --second-account, a second organization on its own
    Twilio account texting the same voters."""
    if db.session.scalars(select(User).where(User.email == "organizer@demo.test")).first():
        click.echo("demo data already present")
        return
    seed_first_organization(password)
    if second_account:
        seed_second_organization(password, *second_account.split(":", 2))


def seed_first_organization(password: str) -> None:
    organization = Organization(name="Vote Together (demo)")
    db.session.add(organization)
    db.session.flush()
    users = [
        User(organization_id=organization.id, email=email, name=name, role=role)
        for email, name, role in (
            ("organizer@demo.test", "Olivia Organizer", Role.OWNER),
            ("volunteer@demo.test", "Val", Role.TEXTER),
            # A second volunteer, so organizers can try handing conversations over.
            ("sam@demo.test", "Sam", Role.TEXTER),
        )
    ]
    for user in users:
        user.set_password(password)
        db.session.add(user)
    campaign = Campaign(
        organization_id=organization.id,
        name="GOTV weekend",
        script=DEMO_SCRIPT,
        status=CampaignStatus.ACTIVE,
        # The demo should work whenever someone tries it; real campaigns default to 9am-8pm.
        window_start_hour=0,
        window_end_hour=24,
    )
    db.session.add(campaign)
    db.session.flush()
    db.session.add_all(
        [
            CannedResponse(campaign_id=campaign.id, title="Where to vote", body=DEMO_WHERE_TO_VOTE),
            Tag(organization_id=organization.id, name="Needs a ride"),
        ]
    )
    imp = import_demo_list(campaign, users[0])
    click.echo(f"demo campaign {campaign.id}: {imp.loaded} contacts ({imp.status.value})")


def seed_second_organization(password: str, account_sid: str, token: str, number: str) -> None:
    """A second organization on a Twilio account of its own, texting the first one's voters
    from its own number: replies and opt-outs never cross between them. Its account is taken
    as given (the demo's carrier is not up yet), not checked with Twilio as the settings page
    does."""
    organization = Organization(name="Neighbors United (demo)")
    db.session.add(organization)
    db.session.flush()
    account = TwilioAccount(
        organization_id=organization.id,
        account_sid=account_sid,
        auth_token=token,
        friendly_name="Neighbors United (demo)",
    )
    db.session.add(account)
    db.session.flush()
    sender = Sender(
        organization_id=organization.id,
        address=number,
        twilio_account_id=account.id,
        label="Neighbors' number",
    )
    users = [
        User(organization_id=organization.id, email=email, name=name, role=role)
        for email, name, role in (
            ("neighbors@demo.test", "Nadia Neighbor", Role.OWNER),
            ("nia@demo.test", "Nia", Role.TEXTER),
        )
    ]
    for user in users:
        user.set_password(password)
    db.session.add_all([sender, *users])
    db.session.flush()
    campaign = Campaign(
        organization_id=organization.id,
        name="Neighbors GOTV",
        script="Hi {first_name}, it's {texter_name} with Neighbors United. Can we count on your "
        "vote on Tuesday? Reply STOP to opt out.",
        status=CampaignStatus.ACTIVE,
        sender_id=sender.id,
        window_start_hour=0,
        window_end_hour=24,
    )
    db.session.add(campaign)
    db.session.flush()
    imp = import_demo_list(campaign, users[0])
    click.echo(f"second demo organization: {imp.loaded} contacts, texting from {number}")


def import_demo_list(campaign: Campaign, organizer: User) -> ContactImport:
    """Import the demo voter list through the real import engine, inline (no worker needed)."""
    with DEMO_LIST.open("rb") as stream:
        imp = imports.receive_upload(campaign, organizer, DEMO_LIST.name, stream)
    imports.start(imp, dict(imp.mapping), ImportMode.APPEND, [])
    db.session.commit()
    imports.run(imp.id, current_app.config["DEFAULT_REGION"])
    db.session.refresh(imp)
    return imp
