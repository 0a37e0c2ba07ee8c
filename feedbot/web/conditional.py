"""Conditional GET: which encoding a client takes, and whether its validators still match (RFC 9110)."""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from feedbot.clock import parse_http_date


def accepts_gzip(request: web.Request) -> bool:
    """Whether the request accepts a gzip-encoded body (q > 0)."""
    for part in request.headers.get("Accept-Encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


def not_modified(request: web.Request, etag: str, last_modified: datetime) -> bool:
    """Whether the client's If-None-Match (or, without it, If-Modified-Since) still matches."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:  # RFC 9110: when present, If-Modified-Since is ignored
        tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if if_modified_since:
        since = parse_http_date(if_modified_since)
        return since is not None and last_modified <= since
    return False
