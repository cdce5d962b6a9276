"""Ids in requests: the URL converter behind every `<int:...>`, query strings, form fields.

All three parse with `gotv.ids.parse`: a path that is not an id matches no route (404), a query
string or form field that is not one is refused (400), so no view meets a value the database
cannot hold.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, abort, request
from werkzeug.routing import BaseConverter, ValidationError
from wtforms import IntegerField

from gotv import ids


class IdConverter(BaseConverter):
    """`<int:name>` in every route: ASCII digits that fit an id column, else no match.

    Werkzeug's own int converter matches any Unicode digit and any length, so a path like
    /campaigns/99999999999999999999999 reached the view and overflowed the database.
    """

    regex = r"[0-9]{1,10}"
    weight = 50  # as Werkzeug's numbers: preferred to a plain string in the same place
    part_isolating = True

    def to_python(self, value: str) -> int:
        parsed = ids.parse(value)
        if parsed is None:
            raise ValidationError()
        return parsed

    def to_url(self, value: Any) -> str:
        return str(int(value))


def init_app(app: Flask) -> None:
    """Make `<int:...>` strict in every route (call before registering blueprints)."""
    app.url_map.converters["int"] = IdConverter


def query_id(name: str) -> int | None:
    """The id in query parameter `name`; None when it is absent or blank.

    :raise 400: for anything else that is not an id.
    """
    text = request.args.get(name, "").strip()
    if not text:
        return None
    return strict(name, text)


def strict(name: str, text: str) -> int:
    """`text` as an id. :raise 400: naming `name` when it is not one."""
    value = ids.parse(text)
    if value is None:
        abort(400, f"{name} must be an id (a whole number), not {text[:40]!r}.")
    return value


class IdField(IntegerField):
    """A form field holding an id: WTForms' IntegerField takes int()'s word for it, which
    accepts Unicode digits and numbers of any size."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        if not valuelist:
            return
        self.data = ids.parse(str(valuelist[0]).strip())
        if self.data is None:
            raise ValueError(self.gettext("Not a valid id."))
