"""Issue 12 case 15 (web): idle connections are closed by the server, running out of descriptors is one
log line rather than a flood, and listening on every interface is said out loud."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from aiohttp import web

from feedbot.web.listen import start_web

SERVER = textwrap.dedent("""
    import asyncio, logging, resource, sys
    from aiohttp import web
    from feedbot.ops.logs import setup_logging
    from feedbot.web.listen import start_web

    async def main():
        setup_logging("info", env={})
        soft = int(sys.argv[1])
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        async def ok(request):
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/healthz", ok)
        server = await start_web(app, "127.0.0.1", 0, idle_timeout=float(sys.argv[2]))
        print(server.port, flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


def hello_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", ok)
    return app


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the server closes the connection (EOF) before `within` seconds pass."""
    try:
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass  # a response to a finished request, then EOF
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n",
                                  b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"],
                         ids=["silent", "unfinished-request", "idle-keep-alive"])
async def test_an_idle_connection_is_closed_by_the_server(sent):
    server = await start_web(hello_app(), "127.0.0.1", 0, idle_timeout=0.5)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(sent)
        await writer.drain()
        # Generous bound: the point is that it closes at all (aiohttp's own default waits an hour).
        assert await closed_by_server(reader, within=20.0)
        writer.close()
    finally:
        await server.close()


def test_the_default_idle_timeout_is_short():
    from feedbot.web import listen

    assert 0 < listen.IDLE_TIMEOUT <= 60


def test_out_of_descriptors_is_one_log_line_and_the_server_recovers(tmp_path: Path):
    script = tmp_path / "serve.py"
    script.write_text(SERVER)
    process = subprocess.Popen([sys.executable, str(script), "64", "1"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    clients: list[socket.socket] = []
    try:
        port = int(process.stdout.readline())
        for _ in range(150):  # more than the 64 descriptors the server may open
            client = socket.socket()
            client.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                client.connect(("127.0.0.1", port))
            clients.append(client)
        time.sleep(4)  # long enough for asyncio to retry accept() several times
        for client in clients:
            client.close()
        clients.clear()
        answer = b""
        deadline = time.monotonic() + 30
        while b"200 OK" not in answer and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as probe:
                    probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    answer = probe.recv(4096)
            except OSError:
                time.sleep(0.2)
        assert b"200 OK" in answer, "the server answers again once the idle connections are gone"
    finally:
        for client in clients:
            client.close()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    lines = stderr.splitlines()
    accept_lines = [line for line in lines if "accept" in line]
    assert len(accept_lines) == 1, stderr[:3000]
    assert "WARNING" in accept_lines[0] and "Too many open files" in accept_lines[0]
    assert "Traceback" not in stderr and len(lines) <= 3, stderr[:3000]


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
async def test_listening_on_all_interfaces_is_one_warning(caplog, host, warned):
    caplog.set_level(logging.INFO, logger="feedbot")
    server = await start_web(hello_app(), host, 0)
    try:
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        if warned:
            assert len(warnings) == 1 and "ALL interfaces" in warnings[0].getMessage()
            assert f"port {server.port}" in warnings[0].getMessage()
        else:
            assert warnings == []
    finally:
        await server.close()


def test_listen_without_host_means_all_interfaces(write_config):
    from feedbot.settings.config import load_config

    config = load_config(write_config('[web]\nlisten = ":8080"\n'), {})
    assert (config.web.host, config.web.port) == ("0.0.0.0", 8080)
