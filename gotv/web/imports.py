"""Organizers: upload a voter list, check its column mapping, and watch it import.

The work is in `gotv.lists.imports` (reading, mapping, the background job); these views parse the
request, call one engine function, and render or redirect.
"""

from __future__ import annotations

from collections.abc import Iterator

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, RadioField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.widgets import CheckboxInput, ListWidget

from gotv.db import db
from gotv.edge import queue
from gotv.lists import imports
from gotv.models import Campaign, ContactImport, ImportMode, ImportRejection, ImportStatus
from gotv.people import audit
from gotv.web.admission import streams_a_download
from gotv.web.auth import get_owned, organizer_required
from gotv.web.campaigns import UploadForm

bp = Blueprint("imports", __name__, url_prefix="/campaigns/<int:campaign_id>/imports")

NOT_IN_FILE = "— not in this file —"
REJECTED_SAMPLE = 10
STORAGE_FULL = (
    "The server's disk is full, so the list could not be stored and nothing was imported. "
    "Ask your administrator to free some space, then upload it again."
)


class CheckboxesField(SelectMultipleField):
    """A multiple choice shown as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class MappingForm(FlaskForm):
    cell = SelectField("Cell phone")
    first_name = SelectField("First name")
    last_name = SelectField("Last name")
    zip = SelectField("ZIP code")
    mode = RadioField(
        "This list",
        choices=[
            SelectChoice(ImportMode.APPEND.value, "Add its new numbers to the campaign"),
            SelectChoice(
                ImportMode.REPLACE.value,
                "Replace the campaign's contacts who have not been texted yet",
            ),
        ],
        default=ImportMode.APPEND.value,
    )
    exclude = CheckboxesField("Leave out numbers already in these campaigns", coerce=int)
    include_recent = BooleanField("Include them: text these people again on purpose")

    FIELDS = ("cell", "first_name", "last_name", "zip")

    def offer(self, imp: ContactImport, campaigns: list[Campaign]) -> None:
        """Fill the choices: the file's headers for each field, the other campaigns to exclude."""
        headers = [SelectChoice("", NOT_IN_FILE)] + [SelectChoice(h, h) for h in imp.headers]
        for name in self.FIELDS:
            self[name].choices = headers
        self.exclude.choices = [SelectChoice(str(c.id), c.name) for c in campaigns]

    def mapping(self) -> dict[str, str]:
        """Standard field -> header, for the fields the organizer mapped."""
        return {name: self[name].data for name in self.FIELDS if self[name].data}


class CancelForm(FlaskForm):
    pass


def get_import(campaign_id: int, import_id: int) -> ContactImport:
    """The import, if it belongs to this campaign of the current user's organization.

    :raise 404: for an import that does not exist, or belongs to another campaign.
    """
    imp = get_owned(ContactImport, import_id)
    if imp.campaign_id != campaign_id:
        abort(404)
    return imp


def other_campaigns(imp: ContactImport) -> list[Campaign]:
    """The organization's other campaigns, newest first, whose numbers the import can exclude."""
    return list(
        db.session.scalars(
            select(Campaign)
            .where(Campaign.organization_id == imp.organization_id, Campaign.id != imp.campaign_id)
            .order_by(Campaign.created_at.desc())
        )
    )


def mapping_form(imp: ContactImport) -> MappingForm:
    """The mapping form, prefilled from the engine's auto-mapping on a first visit."""
    form = MappingForm(
        data={
            **{name: imp.mapping.get(name, "") for name in MappingForm.FIELDS},
            "mode": imp.mode.value,
            "exclude": list(imp.exclude_campaign_ids),
            "include_recent": imp.include_recent,
        }
    )
    form.offer(imp, other_campaigns(imp))
    return form


def rejected_sample(imp: ContactImport) -> list[ImportRejection]:
    """The first few rows the import did not load, to show with the summary."""
    return list(
        db.session.scalars(
            select(ImportRejection)
            .where(ImportRejection.import_id == imp.id)
            .order_by(ImportRejection.line)
            .limit(REJECTED_SAMPLE)
        )
    )


def import_url(imp: ContactImport) -> str:
    return url_for("imports.show", campaign_id=imp.campaign_id, import_id=imp.id)


@bp.post("")
@organizer_required
def upload(campaign_id: int) -> ResponseReturnValue:
    campaign = get_owned(Campaign, campaign_id)
    form = UploadForm()
    if not form.validate_on_submit():
        flash("Choose a CSV or TSV file to upload.", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    file = form.contacts.data
    try:
        imp = imports.receive_upload(
            campaign,
            current_user,
            file.filename or "list.csv",
            file.stream,
        )
    except imports.UnreadableList as error:  # nothing is committed
        flash(f"That file could not be read: {error}", "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    except imports.StorageFull:
        flash(STORAGE_FULL, "error")
        return redirect(url_for("campaigns.show", campaign_id=campaign.id))
    db.session.commit()
    return redirect(import_url(imp))


@bp.get("/<int:import_id>")
@organizer_required
def show(campaign_id: int, import_id: int) -> ResponseReturnValue:
    imp = get_import(campaign_id, import_id)
    if imp.status == ImportStatus.UPLOADED:
        return render_mapping(imp, mapping_form(imp))
    return render_template(
        "imports/progress.html",
        imp=imp,
        campaign=imp_campaign(imp),
        progress=imports.progress(imp),
        rejected=rejected_sample(imp),
        cancel_form=CancelForm(),
    )


def imp_campaign(imp: ContactImport) -> Campaign:
    return get_owned(Campaign, imp.campaign_id)


def render_mapping(imp: ContactImport, form: MappingForm, status: int = 200) -> ResponseReturnValue:
    campaign = imp_campaign(imp)
    return (
        render_template(
            "imports/mapping.html",
            imp=imp,
            campaign=campaign,
            form=form,
            preview=imports.preview_rows(imp),
            not_in_file=NOT_IN_FILE,
            guard_days=campaign.organization.retext_guard_days,
        ),
        status,
    )


@bp.post("/<int:import_id>")
@organizer_required
def start(campaign_id: int, import_id: int) -> ResponseReturnValue:
    imp = get_import(campaign_id, import_id)
    if imp.status != ImportStatus.UPLOADED:
        flash("This list is already importing.", "error")
        return redirect(import_url(imp))
    form = MappingForm()
    form.offer(imp, other_campaigns(imp))
    if not form.validate_on_submit():
        flash("Check the choices below: one of them is not on offer.", "error")
        return render_mapping(imp, form, 400)
    try:
        imports.start(
            imp,
            form.mapping(),
            ImportMode(form.mode.data),
            list(form.exclude.data or []),
            include_recent=bool(form.include_recent.data),
        )
    except ValueError as error:
        flash(f"That cannot be imported yet: {error}.", "error")
        return render_mapping(imp, form, 400)
    db.session.commit()
    queue.enqueue_import(imp.id, imp.organization_id)
    return redirect(import_url(imp))


@bp.post("/<int:import_id>/include-recent")
@organizer_required
def include_recent(campaign_id: int, import_id: int) -> ResponseReturnValue:
    """Load, on purpose, the rows an import left out because they were texted recently."""
    imp = get_import(campaign_id, import_id)
    if not CancelForm().validate_on_submit() or imp.status != ImportStatus.DONE:
        flash("Only a finished import's left-out rows can be added.", "error")
        return redirect(import_url(imp))
    again = imports.reimport_recent(imp, current_user)
    if again is None:
        flash("This import left nobody out for being texted recently.", "error")
        return redirect(import_url(imp))
    audit.record(
        imp.organization_id,
        "recently_texted_included",
        f"import {again.id}",
        current_user.id,
        campaign_id=campaign_id,
        from_import_id=imp.id,
        rows=imp.recent,
    )
    db.session.commit()
    queue.enqueue_import(again.id)
    return redirect(import_url(again))


@bp.get("/<int:import_id>.json")
@organizer_required
def progress(campaign_id: int, import_id: int) -> ResponseReturnValue:
    response = jsonify(imports.progress(get_import(campaign_id, import_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:import_id>/cancel")
@organizer_required
def cancel(campaign_id: int, import_id: int) -> ResponseReturnValue:
    imp = get_import(campaign_id, import_id)
    if CancelForm().validate_on_submit():
        imports.request_cancel(imp)
        db.session.commit()
        flash("Cancelling: nothing from this list will be loaded.", "success")
    return redirect(import_url(imp))


@bp.get("/<int:import_id>/rejections.csv")
@organizer_required
@streams_a_download
def rejections(campaign_id: int, import_id: int) -> Response:
    imp = get_import(campaign_id, import_id)
    audit.record(
        imp.organization_id,
        "export",
        f"rejected rows of import {imp.id}",
        current_user.id,
        export="import_rejections",
        import_id=imp.id,
        rows=imp.rejected,
    )
    db.session.commit()
    return Response(
        stream_with_context(rejection_lines(imp.id)),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename=rejected-rows-{imp.id}.csv"},
    )


def rejection_lines(import_id: int) -> Iterator[str]:
    """The rejections CSV, queried only once streaming starts.

    The request's session is closed when the view returns; stream_with_context then pushes
    the contexts again, so the rows must be read with the session of that second push.
    """
    imp = db.session.get(ContactImport, import_id)
    if imp is not None:
        yield from imports.rejections_csv(imp)
