"""Where a redirect may go: same-site paths only, read the way a browser
reads a ``Location`` header, so nothing that looks local here lands on
another host there."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit, urlunsplit

from flask import request

# Hand-written: Werkzeug and Flask have no such check, and the rules are the
# few of the WHATWG URL standard that decide the host. A browser strips
# leading and trailing C0 controls and spaces, removes every tab and
# newline, and reads a backslash as a slash in http(s) URLs.
_EDGES = "".join(map(chr, range(0x21)))
_DROPPED = re.compile(r"[\t\n\r]")


def _as_browser_reads(url: str) -> str:
    return _DROPPED.sub("", url.strip(_EDGES)).replace("\\", "/")


def same_site_path(target: str | None, host: str | None = None) -> str | None:
    """The path (with query and fragment) ``target`` leads to, if it stays
    on this site, else ``None``.

    :param target: a path such as ``/projects/1?tab=history``, or an
        absolute ``http(s)`` URL (a ``Referer``), which passes only when its
        host is ``host``.
    :param host: this site's host (``request.host``); without it only paths
        pass.
    """
    if not target:
        return None
    url = _as_browser_reads(target)
    # "//evil.example" and "///evil.example" both name another host; urlsplit
    # reads the second as a path
    if url.startswith("//"):
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        if host is None or parts.scheme.lower() not in ("http", "https") or parts.netloc.lower() != host.lower():
            return None
    path = parts.path
    # an encoded slash ("/%2F/evil.example") turns into a second slash for
    # any server or proxy that decodes the path before redirecting again
    if not path.startswith("/") or _as_browser_reads(unquote(path)).startswith("//"):
        return None
    return urlunsplit(("", "", path, parts.query, parts.fragment))


def redirect_target(default: str = "/", *, body: bool = True) -> str:
    """Where to go back to after a form: the request's ``next`` value, else
    the ``Referer`` when it is a page of this site, else ``default``.

    :param body: look for ``next`` in a form body too, not only in the
        query string; ``False`` reads no body.
    """
    values = request.values if body else request.args
    return same_site_path(values.get("next")) or same_site_path(request.referrer, request.host) or default
