"""Where a page may send the browser back to after a login or a language switch:
a same-site path only (no open redirect). Shared by the appliance's pages and the
county hub's console."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

__all__ = ["safe_next"]


def safe_next(target: str | None, fallback: str = "/") -> str:
    """A same-site path to go back to, else ``fallback`` (no open redirect).

    Only a plain absolute path is kept. Browsers read a backslash as a slash and
    drop tabs and newlines inside URLs, so ``/\\evil``, ``/\t/evil`` and ``//evil``
    all lead off the site; the same written with %-escapes (``/%5Cevil``,
    ``/%2F%2Fevil``, twice escaped ...) may be decoded on the way by a proxy or a
    script. Each decoding of ``target`` must pass, so none of them gets through."""
    if not target:
        return fallback
    text = target
    for _ in range(4):  # %-decoded until it no longer changes (at most 3 layers of escaping)
        if not _plain_path(text):
            return fallback
        decoded = unquote(text)
        if decoded == text:
            return target
        text = decoded
    return fallback


def _plain_path(text: str) -> bool:
    if not text.startswith("/") or text[1:2] in ("/", "\\"):
        return False
    if "\\" in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return False
    parts = urlsplit(text)
    return not parts.scheme and not parts.netloc
