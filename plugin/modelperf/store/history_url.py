"""Where a history store lives: a file path or a database URL, made into a SQLAlchemy URL.

Kept apart from the store itself so the one place that knows drivers stays small: a bare
``postgresql://`` takes the driver that is installed, and a missing one is named in one sentence.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

__all__ = ["HistoryError", "to_url"]

# SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (3), but the dev extra installs psycopg2-binary:
# a bare URL takes the first of these modules that is installed.
_PG_DRIVERS = ("psycopg2", "psycopg")


class HistoryError(Exception):
    """A history store that cannot be used; the message is one sentence with the fix."""


def to_url(url_or_path: str | Path) -> URL:
    """A URL as given, or a plain path turned into a SQLite URL (its folders created)."""
    text = str(url_or_path)
    if "://" in text:
        try:
            url = make_url(text)
            url.get_dialect()
        except (ArgumentError, NoSuchModuleError) as exc:
            raise HistoryError(
                f"History location {text!r} is not a usable database URL ({exc}): give a file path "
                "or a URL such as sqlite:///history.sqlite or postgresql+psycopg2://user@host/db."
            ) from None
        if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        return _with_driver(url)
    path = Path(text).expanduser().absolute()
    if path.is_dir():
        raise HistoryError(
            f"History location {path} is a directory: give a file path such as {path / 'history.sqlite'}."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    return URL.create("sqlite", database=str(path))


def _with_driver(url: URL) -> URL:
    """A bare postgresql:// URL with the installed driver named; any other URL as it is."""
    if url.drivername != "postgresql":
        return url
    for module in _PG_DRIVERS:
        if importlib.util.find_spec(module) is not None:
            return url.set(drivername=f"postgresql+{module}")
    raise HistoryError(
        f"History location {url.render_as_string(hide_password=True)} needs a PostgreSQL driver, and neither "
        "psycopg2 nor psycopg is installed: pip install psycopg2-binary, or name the driver you have in the "
        "URL (postgresql+<driver>://)."
    )
