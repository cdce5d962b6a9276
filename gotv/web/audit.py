"""Organizers: read the organization's audit log (there is nothing to edit or delete)."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from sqlalchemy import select

from gotv.db import db
from gotv.models import User
from gotv.people import audit
from gotv.web.auth import organizer_required
from gotv.web.ids import query_id

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("")
@organizer_required
def index() -> ResponseReturnValue:
    organization_id = current_user.organization_id
    action = request.args.get("action", "").strip()[:60]
    user_id = query_id("user")
    before = query_id("before")
    filters: dict[str, str | int] = {"action": action} if action else {}
    if user_id is not None:
        filters["user"] = user_id
    return render_template(
        "audit/index.html",
        result=audit.page(organization_id, action, user_id, before),
        actions=audit.actions(organization_id),
        users=db.session.scalars(
            select(User).where(User.organization_id == organization_id).order_by(User.name)
        ).all(),
        action=action,
        user_id=user_id,
        filters=filters,
        first_page=before is None,
    )


def link(ref: audit.Ref) -> str | None:
    """Where a thing named in an entry is shown, if anywhere."""
    kind, ref_id = ref.kind, ref.id
    if kind == "campaign" and ref_id is not None:
        return url_for("campaigns.show", campaign_id=ref_id)
    if kind in ("question", "choice") and ref_id is not None and ref.campaign_id is not None:
        return url_for("campaigns.show", campaign_id=ref.campaign_id, _anchor=f"{kind}-{ref_id}")
    if kind == "contact" and ref_id is not None:
        return url_for("review.conversation", contact_id=ref_id)
    if kind == "user" and ref_id is not None:
        return url_for("audit.index", user=ref_id)
    if kind == "tag":
        return url_for("content.tags")
    if kind == "import" and ref_id is not None and ref.campaign_id is not None:
        return url_for("imports.show", campaign_id=ref.campaign_id, import_id=ref_id)
    if kind == "number" and ref.name:
        return url_for("review.index", who=ref.name)
    return None


@bp.app_context_processor
def audit_helpers() -> dict[str, object]:
    """Jinja globals: audit_link(ref) for the things an entry names."""
    return {"audit_link": link, "is_ref": lambda part: isinstance(part, audit.Ref)}
