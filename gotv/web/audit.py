"""Organizers: read the organization's audit log (there is nothing to edit or delete)."""

from __future__ import annotations

from flask import Blueprint, render_template, request
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
