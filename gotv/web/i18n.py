"""The volunteers' languages: English and Spanish, through Flask-Babel's gettext catalogs.

Everything a volunteer sees is marked for translation: templates with `_()` and `ngettext()`,
views with `gettext`, the rules' refusals with `N_` (gotv/texting/texts.py; translated here, as
the rules import no Flask), and the scripts' strings with `js_strings`, which a page carries as
JSON. The catalogs are gotv/translations/<lang>/LC_MESSAGES/messages.po, compiled to .mo and
committed (scripts/translations says how to update them; tests/test_i18n.py checks the .mo
matches its .po and that no volunteer page shows an untranslated string).

Each person's language is their own choice on the Account page (`User.locale`), or else the
browser's (Accept-Language), or else English.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, g, request
from flask_babel import Babel, get_locale, get_translations, gettext
from flask_login import current_user

LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT = "en"

babel = Babel()


def init_app(app: Flask) -> None:
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT)
    babel.init_app(app, locale_selector=choose_locale)
    app.before_request(forget_locale)
    app.jinja_env.globals.update(current_language=current_language, role_name=role_name)


def forget_locale() -> None:
    """Each request chooses its language afresh: Flask-Babel keeps the choice on `g`, which
    outlives a request where the app context does (the tests' client)."""
    g.pop("_flask_babel", None)


def choose_locale() -> str:
    """The signed-in person's chosen language, else the browser's best match, else English."""
    chosen = getattr(current_user, "locale", None) if current_user else None
    if chosen in LANGUAGES:
        return str(chosen)
    return browser_locale()


def browser_locale() -> str:
    """The browser's preferred language among ours (Accept-Language), else English."""
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT) or DEFAULT


def current_language() -> str:
    """The page's language, for <html lang> and the scripts' date formats."""
    return str(get_locale() or DEFAULT)


def role_name(role: Any) -> str:
    """A role's name in the page's language."""
    names = {"owner": gettext("Owner"), "admin": gettext("Admin"), "texter": gettext("Texter")}
    return names.get(role.value, role.value)


def translate(message: str, **values: Any) -> str:
    """`message` (marked with N_ in a rule package) in the page's language."""
    return gettext(message, **values)


def js_plural(singular: str, plural: str) -> dict[str, str]:
    """Both forms of a counted message for a script, "{n}" where the count goes (Spanish and
    English count alike: one, and everything else)."""
    translations = get_translations()
    return {
        "one": translations.ngettext(singular, plural, 1).replace("%(num)s", "{n}"),
        "other": translations.ngettext(singular, plural, 2).replace("%(num)s", "{n}"),
    }
