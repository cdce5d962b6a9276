"""Organizers: the organization's opt-out list: search, add, import, export, reverse."""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from sqlalchemy import Select, func, select
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length

from gotv.compliance import optouts
from gotv.db import db
from gotv.lists import contacts, exports
from gotv.models import OptOut
from gotv.people import audit, zones
from gotv.web.admission import streams_a_download
from gotv.web.auth import get_owned, organizer_required

bp = Blueprint("optouts", __name__, url_prefix="/opt-outs")

PAGE_SIZE = 200


CELL_TYPED = 40  # characters of a number typed to opt out
UNREAD_SHOWN = 10  # rows an import could not read, named with their line and reason


class AddForm(FlaskForm):
    cell = StringField("Phone number", validators=[DataRequired(), Length(max=CELL_TYPED)])


class ImportForm(FlaskForm):
    numbers = FileField("CSV with a phone column", validators=[FileRequired()])


class ReverseForm(FlaskForm):
    reason = StringField("Why", validators=[DataRequired(), Length(max=200)])
    sure = BooleanField("They asked to be texted again", validators=[DataRequired()])


def organization_opt_outs() -> Select[OptOut]:
    """A query for the current organization's opt-outs."""
    return select(OptOut).where(OptOut.organization_id == current_user.organization_id)


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    search = request.args.get("q", "").strip()
    query = organization_opt_outs().order_by(OptOut.created_at.desc(), OptOut.id.desc())
    if search:
        digits = "".join(c for c in search if c.isdigit())
        query = query.where(OptOut.cell.contains(digits or search))
    total = db.session.scalar(select(func.count()).select_from(organization_opt_outs().subquery()))
    return render_template(
        "optouts/index.html",
        opt_outs=db.session.scalars(query.limit(PAGE_SIZE)).all(),
        total=total,
        search=search,
        add_form=AddForm(),
        import_form=ImportForm(),
        reverse_form=ReverseForm(),
    )


@bp.post("")
@organizer_required
def add() -> ResponseReturnValue:
    form = AddForm()
    if not form.validate_on_submit():
        flash(f"Type the phone number to opt out (at most {CELL_TYPED} characters).", "error")
    else:
        try:
            cell = contacts.normalize_phone(
                form.cell.data or "", current_app.config["DEFAULT_REGION"]
            )
        except contacts.InvalidPhone as error:
            flash(str(error), "error")
        else:
            optouts.record_opt_out(
                current_user.organization_id, cell, "admin", user_id=current_user.id
            )
            db.session.commit()
            flash(f"{cell} is opted out.", "success")
    return redirect(url_for("optouts.index"))


@bp.post("/import")
@organizer_required
def import_numbers() -> ResponseReturnValue:
    form = ImportForm()
    if not form.validate_on_submit():
        flash("Choose a CSV file with a phone column.", "error")
        return redirect(url_for("optouts.index"))
    try:
        parsed = contacts.read_list(
            form.numbers.data.read(), current_app.config["DEFAULT_REGION"], any_number=True
        )
    except contacts.UnreadableList as error:
        flash(f"That file could not be read: {error}", "error")
        return redirect(url_for("optouts.index"))
    added = sum(
        optouts.record_opt_out(
            current_user.organization_id, row.cell, "import", user_id=current_user.id
        )
        is not None
        for row in parsed.contacts
    )
    db.session.commit()
    unread = [row for row in parsed.rejected if row.reason != contacts.DUPLICATE_IN_FILE]
    flash(
        f"{added} numbers opted out; {len(parsed.contacts) - added} were already; "
        f"{len(unread)} rows could not be read{unread_lines(unread)}",
        "success",
    )
    return redirect(url_for("optouts.index"))


def unread_lines(rows: list[contacts.RejectedRow]) -> str:
    """ ": line 3: not a phone number; ..." for the first UNREAD_SHOWN rows, or "."."""
    if not rows:
        return "."
    shown = "; ".join(f"line {row.line}: {row.reason}" for row in rows[:UNREAD_SHOWN])
    more = f"; and {len(rows) - UNREAD_SHOWN} more" if len(rows) > UNREAD_SHOWN else ""
    return f": {shown}{more}. Fix them and import the file again."


@bp.get("/export.csv")
@organizer_required
@streams_a_download
def export() -> Response:
    organization_id = current_user.organization_id
    audit.record(organization_id, "opt_outs_exported", user_id=current_user.id)
    db.session.commit()

    zone = zones.organization_zone(current_user.organization)

    def lines() -> Iterator[str]:
        # Read while streaming (the server-side cursor lives in this request's transaction).
        rows = exports.opt_out_rows(organization_id, zone)
        yield from exports.csv_chunks(["cell", "source", "opted_out_at"], rows)

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=opt-outs.csv"},
    )


@bp.post("/<int:opt_out_id>/reverse")
@organizer_required
def reverse(opt_out_id: int) -> ResponseReturnValue:
    opt_out = get_owned(OptOut, opt_out_id)
    form = ReverseForm()
    if not form.validate_on_submit():
        flash(
            "Say why, and tick the box: reversing an opt-out lets volunteers text them again.",
            "error",
        )
        return redirect(url_for("optouts.index"))
    optouts.lift_opt_out(
        opt_out.organization_id, opt_out.cell, why=form.reason.data or "", user_id=current_user.id
    )
    db.session.commit()
    flash(f"The opt-out of {opt_out.cell} is reversed and recorded in the audit log.", "success")
    return redirect(url_for("optouts.index"))
