"""URL credentials: redacted in every string feedbot shows, still used for fetching."""

from __future__ import annotations

import logging
import sys

import pytest

from feedbot.ops.logs import RedactingFormatter
from feedbot.settings.secrets import REDACTED_USERINFO, redact, redact_url, strip_userinfo

PASSWORD = "hunter2-Very-Secret"


@pytest.mark.parametrize(("url", "shown"), [
    (f"http://alice:{PASSWORD}@example.org/feed.xml", "http://***@example.org/feed.xml"),
    (f"https://alice:{PASSWORD}@example.org:8443/a?b=1#c", "https://***@example.org:8443/a?b=1#c"),
    # A token alone in the user part is as secret as a password.
    (f"https://{PASSWORD}@example.org/", "https://***@example.org/"),
    # '@' in the password (should be %40, but people paste it raw): everything up to the last '@' goes.
    (f"http://bob:p@ss{PASSWORD}@[::1]:81/x", "http://***@[::1]:81/x"),
    ("https://example.org/a@b", "https://example.org/a@b"),  # an '@' in the path is no userinfo
    ("https://example.org/", "https://example.org/"),
])
def test_redact_url_hides_the_whole_userinfo(url, shown):
    assert redact_url(url) == shown
    assert redact(f"fetching {url} failed") == f"fetching {shown} failed"


def test_strip_userinfo_gives_the_public_url():
    assert strip_userinfo(f"http://alice:{PASSWORD}@example.org:81/p/a.html?x#y") == "http://example.org:81/p/a.html?x#y"
    assert strip_userinfo("http://example.org/") == "http://example.org/"


def test_redact_finds_urls_inside_reprs_and_quotes():
    text = f"FetchError('cannot connect to http://alice:{PASSWORD}@127.0.0.1:9/c.html: refused') <HTTP://u:{PASSWORD}@h>"
    out = redact(text)
    assert PASSWORD not in out and "alice" not in out
    assert "http://***@127.0.0.1:9/c.html" in out and REDACTED_USERINFO in out


def test_the_log_formatter_redacts_messages_args_and_tracebacks():
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    url = f"http://alice:{PASSWORD}@example.org/feed.xml"
    try:
        raise RuntimeError(f"boom while fetching {url}")
    except RuntimeError:
        record = logging.LogRecord("feedbot", logging.ERROR, __file__, 1, "poll of %s failed", (url,), sys.exc_info())
    line = formatter.format(record)
    assert PASSWORD not in line and "alice" not in line
    assert line.count("http://***@example.org/feed.xml") == 2  # the message and the traceback
