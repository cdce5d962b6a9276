"""The JSON API at /api/v1: bearer-token auth, scopes, and thin views over `service`.

No cookies and no sessions: every request carries `Authorization: Bearer <token>`, so the
blueprint is exempt from CSRF (a browser cannot be tricked into sending that header).
There is no endpoint that sends a text: peer-to-peer texting needs a volunteer's click.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from functools import wraps
from typing import IO, Any, NoReturn, TypeVar

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from gotv import ids
from gotv.api import service, tokens
from gotv.api.errors import json_error
from gotv.db import db
from gotv.edge import queue
from gotv.lists import exports, imports
from gotv.models import ApiToken, Campaign, ContactImport, ImportMode, Organization
from gotv.people import audit, zones
from gotv.web.admission import streams_a_download

bp = Blueprint("api", __name__, url_prefix="/api/v1")

View = TypeVar("View", bound=Callable[..., Any])
DEFAULT_PAGE = 50
MAPPING_FIELDS = ("cell", "first_name", "last_name", "zip")
NAME_LENGTH = 200
SCRIPT_LENGTH = 1600


def fail(status: int, code: str, message: str, **details: Any) -> NoReturn:
    abort(json_error(status, code, message, **details))


@bp.before_request
def authenticate() -> None:
    """Every endpoint but the OpenAPI document needs a live token: else 401."""
    if request.endpoint == "api.openapi":
        return
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        fail(401, "unauthorized", "Send an API token: Authorization: Bearer <token>.")
    token = tokens.authenticate(secret.strip())
    if token is None:
        fail(
            401,
            "unauthorized",
            "This API token is not valid, has been revoked, or its creator is no longer an "
            "organizer who can sign in.",
        )
    db.session.commit()  # last_used_at, when it was due
    g.api_token = token


def current_token() -> ApiToken:
    token: ApiToken = g.api_token
    return token


def requires(scope: str) -> Callable[[View], View]:
    """The view needs a token with `scope`: else 403."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if scope not in current_token().scopes:
                fail(403, "insufficient_scope", f"This token lacks the {scope} scope.", scope=scope)
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]

    return decorate


def found(lookup: Callable[[int, int], Any], row_id: int) -> Any:
    """The organization's row, or a 404 (for rows of other organizations too). (The route's
    converter lets only ids through: gotv/web/ids.py.)"""
    try:
        return lookup(current_token().organization_id, row_id)
    except service.NotFound:
        fail(404, "not_found", "No such resource.")


def unprocessable(error: service.Unprocessable) -> NoReturn:
    fail(422, error.code, str(error), **error.details)


# --- Request parsing -----------------------------------------------------------------------


def int_arg(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    value = ids.parse(raw)
    if value is None:
        fail(400, "invalid_parameter", f"{name} must be an integer.", parameter=name)
    if not low <= value <= high:
        fail(400, "invalid_parameter", f"{name} must be from {low} to {high}.", parameter=name)
    return value


def page_args() -> tuple[int | None, int]:
    after = int_arg("after", None, 0, ids.MAX_ID)
    limit = int_arg("limit", DEFAULT_PAGE, 1, service.MAX_PAGE)
    return after, limit or DEFAULT_PAGE


def since_arg() -> datetime | None:
    raw = request.args.get("since")
    if raw is None:
        return None
    try:
        since = datetime.fromisoformat(raw)
        return since.astimezone(UTC) if since.tzinfo is not None else since.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        fail(400, "invalid_parameter", "since must be an ISO 8601 timestamp.", parameter="since")


def json_body() -> dict[str, Any]:
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # nested too deep for the parser
        body = None
    if not isinstance(body, dict):
        fail(400, "invalid_json", "Send a JSON object with Content-Type: application/json.")
    return body


def text_field(body: dict[str, Any], name: str, max_length: int, required: bool) -> str:
    value = body.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()) or "\x00" in value:
        fail(422, "invalid_field", f"{name} must be a non-empty string of text.", field=name)
    if len(value) > max_length:
        fail(422, "invalid_field", f"{name} is longer than {max_length}.", field=name)
    return value


def bool_field(body: dict[str, Any], name: str, required: bool) -> bool:
    value = body.get(name, None if required else False)
    if not isinstance(value, bool):
        fail(422, "invalid_field", f"{name} must be true or false.", field=name)
    return value


def page_response(page: service.Page) -> Response:
    return jsonify({"data": page.items, "next_after": page.next_after})


# --- The OpenAPI document ------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document of this API (public: it holds no data)."""
    with current_app.open_resource("api/openapi.json") as document:
        return Response(document.read(), mimetype="application/json")


# --- Campaigns -----------------------------------------------------------------------------


@bp.get("/campaigns")
@requires("campaigns:read")
def list_campaigns() -> ResponseReturnValue:
    after, limit = page_args()
    return page_response(service.campaigns(current_token().organization_id, after, limit))


@bp.post("/campaigns")
@requires("campaigns:write")
def create_campaign() -> ResponseReturnValue:
    body = json_body()
    name = text_field(body, "name", NAME_LENGTH, required=True)
    script = text_field(body, "script", SCRIPT_LENGTH, required=False)
    trust_zip_alone = bool_field(body, "trust_zip_alone", required=False)
    token = current_token()
    try:
        campaign = service.create_campaign(
            token.organization_id, name.strip(), script, token.id, trust_zip_alone
        )
    except service.Unprocessable as error:
        unprocessable(error)
    db.session.commit()
    response = jsonify(service.campaign_json(campaign))
    response.status_code = 201
    response.headers["Location"] = url_for("api.get_campaign", campaign_id=campaign.id)
    return response


@bp.get("/campaigns/<int:campaign_id>")
@requires("campaigns:read")
def get_campaign(campaign_id: int) -> ResponseReturnValue:
    return jsonify(service.campaign_json(found(service.campaign, campaign_id)))


@bp.post("/campaigns/<int:campaign_id>/status")
@requires("campaigns:write")
def change_status(campaign_id: int) -> ResponseReturnValue:
    campaign: Campaign = found(service.campaign, campaign_id)
    action = json_body().get("action")
    try:
        service.change_status(campaign, str(action), current_token().id)
    except service.Unprocessable as error:
        unprocessable(error)
    db.session.commit()
    return jsonify(service.campaign_json(campaign))


@bp.get("/campaigns/<int:campaign_id>/texting-hours")
@requires("campaigns:read")
def get_texting_hours(campaign_id: int) -> ResponseReturnValue:
    return jsonify(service.texting_hours_json(found(service.campaign, campaign_id)))


@bp.put("/campaigns/<int:campaign_id>/texting-hours")
@requires("campaigns:write")
def set_texting_hours(campaign_id: int) -> ResponseReturnValue:
    """Set the campaign's hours in each voter's local time, inside the federal 8-21."""
    campaign: Campaign = found(service.campaign, campaign_id)
    body = json_body()
    try:
        service.set_texting_hours(
            campaign, body.get("start_hour"), body.get("end_hour"), current_token().id
        )
    except service.Unprocessable as error:
        unprocessable(error)
    db.session.commit()
    return jsonify(service.texting_hours_json(campaign))


@bp.get("/campaigns/<int:campaign_id>/script")
@requires("campaigns:read")
def get_script(campaign_id: int) -> ResponseReturnValue:
    """The campaign's script as a tree: first message, questions, answers, what follows."""
    return jsonify(service.script_json(found(service.campaign, campaign_id)))


@bp.put("/campaigns/<int:campaign_id>/time-zone-rule")
@requires("campaigns:write")
def set_time_zone_rule(campaign_id: int) -> ResponseReturnValue:
    campaign: Campaign = found(service.campaign, campaign_id)
    trust_zip_alone = bool_field(json_body(), "trust_zip_alone", required=True)
    service.set_time_zone_rule(campaign, trust_zip_alone, current_token().id)
    db.session.commit()
    return jsonify(service.campaign_json(campaign))


@bp.get("/campaigns/<int:campaign_id>/stats")
@requires("stats:read")
def campaign_stats(campaign_id: int) -> ResponseReturnValue:
    response = jsonify(service.stats(found(service.campaign, campaign_id)))
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Contact uploads -----------------------------------------------------------------------


@bp.post("/campaigns/<int:campaign_id>/imports")
@requires("contacts:write")
def upload_contacts(campaign_id: int) -> ResponseReturnValue:
    """Store the list, start its import as the web's mapping page would, and answer 202."""
    campaign: Campaign = found(service.campaign, campaign_id)
    token = current_token()
    if token.created_by is None:
        fail(403, "no_owner", "This token has no user to record as the uploader.")
    filename, stream, options = upload_source()
    filename = filename.replace("\x00", "")
    mapping = {field: options[field] for field in MAPPING_FIELDS if options.get(field)}
    mode = options.get("mode", ImportMode.APPEND.value)
    if mode not in {m.value for m in ImportMode}:
        fail(422, "invalid_field", "mode must be append or replace.", field="mode")
    try:
        imp = imports.receive_upload(campaign, token.created_by, filename, stream)
    except imports.UnreadableList as error:
        fail(422, "unreadable_list", f"That file could not be read: {error}")
    include_recent = str(options.get("include_recent", "false")).lower()
    if include_recent not in ("true", "false"):
        fail(422, "invalid_field", "include_recent must be true or false.", field="include_recent")
    start_import(imp, mapping or dict(imp.mapping), ImportMode(mode), include_recent == "true")
    audit.record(
        imp.organization_id, "api_contacts_uploaded", f"import {imp.id}", token_id=token.id
    )
    db.session.commit()
    queue.enqueue_import(imp.id, imp.organization_id)
    location = url_for("api.import_progress", import_id=imp.id)
    response = jsonify(
        {
            "id": imp.id,
            "campaign_id": imp.campaign_id,
            "status": imp.status.value,
            "progress_url": location,
        }
    )
    response.status_code = 202
    response.headers["Location"] = location
    return response


def upload_source() -> tuple[str, IO[bytes], Mapping[str, str]]:
    """(file name, stream, options) of a multipart `file` or a text/csv body (options: query)."""
    upload = request.files.get("file")
    if upload is not None:
        return upload.filename or "upload.csv", upload.stream, request.form
    if request.mimetype == "text/csv":
        return request.args.get("filename", "upload.csv"), request.stream, request.args
    fail(400, "no_file", "Send the list as a multipart field 'file' or a text/csv body.")


def start_import(
    imp: ContactImport, mapping: dict[str, str], mode: ImportMode, include_recent: bool
) -> None:
    """Queue the import with this mapping; a mapping that cannot be used is a 422."""
    try:
        imports.start(imp, mapping, mode, [], include_recent=include_recent)
    except ValueError as error:
        key = imp.upload_key
        db.session.rollback()
        imports.discard_upload(key)
        fail(422, "invalid_mapping", f"That cannot be imported: {error}.", headers=imp.headers)


@bp.get("/imports/<int:import_id>")
@requires("contacts:write")
def import_progress(import_id: int) -> ResponseReturnValue:
    imp: ContactImport = found(service.contact_import, import_id)
    response = jsonify(
        {
            "id": imp.id,
            "campaign_id": imp.campaign_id,
            "filename": imp.filename,
            "mapping": imp.mapping,
            **imports.progress(imp),
            "created_at": service.timestamp(imp.created_at),
            "finished_at": service.timestamp(imp.finished_at),
        }
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# --- Conversations -------------------------------------------------------------------------


@bp.get("/campaigns/<int:campaign_id>/conversations")
@requires("conversations:read")
def list_conversations(campaign_id: int) -> ResponseReturnValue:
    campaign: Campaign = found(service.campaign, campaign_id)
    after, limit = page_args()
    return page_response(service.conversations(campaign, after, limit))


@bp.get("/conversations/<int:contact_id>/messages")
@requires("conversations:read")
def list_messages(contact_id: int) -> ResponseReturnValue:
    contact = found(service.conversation, contact_id)
    after, limit = page_args()
    return page_response(service.messages(contact, after, limit))


# --- Opt-outs ------------------------------------------------------------------------------


@bp.get("/opt-outs")
@requires("optouts:read")
def list_opt_outs() -> ResponseReturnValue:
    since = since_arg()
    after, limit = page_args()
    return page_response(service.opt_outs(current_token().organization_id, since, after, limit))


@bp.post("/opt-outs")
@requires("optouts:write")
def import_opt_outs() -> ResponseReturnValue:
    numbers = json_body().get("numbers")
    if (
        not isinstance(numbers, list)
        or not all(isinstance(number, str) for number in numbers)
        or not 1 <= len(numbers) <= service.MAX_OPT_OUT_NUMBERS
    ):
        fail(
            422,
            "invalid_field",
            f"numbers must be a list of 1 to {service.MAX_OPT_OUT_NUMBERS} strings.",
            field="numbers",
        )
    token = current_token()
    results = service.import_opt_outs(
        token.organization_id, numbers, current_app.config["DEFAULT_REGION"], token.id
    )
    db.session.commit()
    return jsonify({"results": results})


@bp.get("/opt-outs/export.csv")
@requires("optouts:read")
@streams_a_download
def export_opt_outs() -> Response:
    token = current_token()
    audit.record(token.organization_id, "opt_outs_exported", token_id=token.id, via="api")
    db.session.commit()
    return Response(
        stream_with_context(opt_out_lines(token.organization_id)),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=opt-outs.csv"},
    )


def opt_out_lines(organization_id: int) -> Iterator[str]:
    """The CSV, queried only once streaming starts (in the context stream_with_context keeps):
    numbers as a spreadsheet reads them, times in the organization's zone."""
    organization = db.session.get(Organization, organization_id)
    assert organization is not None
    rows = exports.opt_out_rows(organization_id, zones.organization_zone(organization))
    yield from exports.csv_chunks(["cell", "source", "opted_out_at"], rows)
