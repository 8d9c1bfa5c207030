"""Template filters: data values in the user's language, sizes and times people read."""

from __future__ import annotations

import time

from flask import Flask
from flask_babel import gettext


def label(value: str | None) -> str:
    """A curriculum value (语文, 一年级, 统编版) in the user's language, if the catalogue knows it."""
    return gettext(value) if value else ""


def filesize(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def when(ts: float | str | None) -> str:
    """A timestamp as local date and time; a dash when there is none."""
    if ts in (None, "", 0):
        return gettext("从未")
    if isinstance(ts, str):
        return ts
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))


def has_role(person, *roles: str) -> bool:
    """Whether the logged-in person (or nobody) has any of ``roles``."""
    return bool(person is not None and set(person.roles) & set(roles))


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(label=label, filesize=filesize, when=when, has_role=has_role)
