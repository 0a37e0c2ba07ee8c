"""The Fetcher's transport pieces: proxies read from the environment once, credentials kept out of messages."""

from __future__ import annotations

import base64
import socket

import pytest
from yarl import URL

from feedbot.errors import FetchError
from feedbot.settings.config import FetchConfig
from feedbot.sources.http import Fetcher, shown
from feedbot.sources.transport import EnvironmentProxies
from tests.sources.test_http import RawHTTPServer, no_proxy_environment


def test_no_proxy_forms():
    proxies = EnvironmentProxies({"http": "proxy.internal:3128", "https": "http://secure-proxy:3129",
                                  "no": "example.org, .corp.test,10.0.0.0/8,::1,http://svc.local:8080"})
    proxy = proxies.for_url(URL("http://feeds.example.net/rss"))
    assert proxy is not None and str(proxy[0]) == "http://proxy.internal:3128" and proxy[1] is None
    assert str(proxies.for_url(URL("https://feeds.example.net/rss"))[0]) == "http://secure-proxy:3129"
    for direct in ("http://example.org/", "http://www.example.org/", "http://a.corp.test/", "http://10.2.3.4/",
                   "http://[::1]:8080/", "http://svc.local/"):
        assert proxies.for_url(URL(direct)) is None, direct
    assert proxies.for_url(URL("http://notexample.org/")) is not None  # a suffix match is per label
    assert proxies.for_url(URL("http://11.0.0.1/")) is not None


def test_star_no_proxy_and_all_proxy():
    assert not EnvironmentProxies({"all": "http://p:1", "no": "*"})
    everything = EnvironmentProxies({"all": "socks-less-proxy:8080"})
    assert str(everything.for_url(URL("https://x.org/"))[0]) == "http://socks-less-proxy:8080"
    assert not EnvironmentProxies({})


def test_proxy_credentials_become_basic_auth():
    proxies = EnvironmentProxies({"http": "http://user%40corp:s%3Acret@proxy:3128"})
    url, headers = proxies.for_url(URL("http://feeds.example.net/"))
    assert str(url) == "http://proxy:3128"
    assert headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"user@corp:s:cret").decode()}


async def test_proxy_credentials_are_sent_as_proxy_authorization(monkeypatch):
    no_proxy_environment(monkeypatch)
    async with RawHTTPServer() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://ops:pa55@"))
        async with Fetcher(FetchConfig(timeout=2, deadline=4)) as client:
            await client.get("http://feeds.example.invalid/rss.xml")
    expected = "Basic " + base64.b64encode(b"ops:pa55").decode()
    assert proxy.request_headers[0]["Proxy-Authorization"] == expected


def test_shown_masks_userinfo_only():
    assert shown("https://bob:secret@feeds.example.org:8443/a?b=1") == "https://***@feeds.example.org:8443/a?b=1"
    assert shown("https://feeds.example.org/@someone") == "https://feeds.example.org/@someone"


async def test_error_messages_never_carry_url_credentials():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://bob:secret@127.0.0.1:{port}/feed.xml"
    async with Fetcher(FetchConfig(timeout=1, deadline=2)) as client:
        with pytest.raises(FetchError) as caught:
            await client.get(url)
    assert str(caught.value).startswith(f"cannot connect to http://***@127.0.0.1:{port}/feed.xml")
    assert "secret" not in str(caught.value) and "bob" not in str(caught.value)


async def test_a_closed_fetcher_refuses_new_requests():
    client = Fetcher(FetchConfig(timeout=1, deadline=2))
    await client.aclose()
    with pytest.raises(FetchError, match="closed"):
        await client.get("http://127.0.0.1:9/feed.xml")
