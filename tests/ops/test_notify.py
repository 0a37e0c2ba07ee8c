"""The systemd notify protocol against a real datagram socket."""

from __future__ import annotations

import os
import socket

from feedbot.ops.notify import Notifier


def listen(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(2)
    return sock, path


def test_ready_status_watchdog_stopping_reach_the_socket(tmp_path):
    sock, path = listen(tmp_path)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval == 10.0
    assert notifier.ready("polled 0 sources")
    assert sock.recv(4096) == b"READY=1\nSTATUS=polled 0 sources"
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()
    sock.close()


def test_abstract_socket_address(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"feedbot-test-{os.getpid()}"
    sock.bind("\0" + name)
    sock.settimeout(2)
    Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
    assert sock.recv(4096) == b"STATUS=hello"
    sock.close()


def test_without_systemd_nothing_is_sent_and_watchdog_for_other_pid_is_off():
    notifier = Notifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready() is False


def test_a_vanished_socket_is_logged_not_raised(tmp_path, caplog):
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.status("x") is False
    assert "cannot notify systemd" in caplog.text
    assert notifier.status("y") is False  # disabled after the first failure, no log flood
    assert caplog.text.count("cannot notify systemd") == 1


def test_a_listener_that_stops_reading_never_blocks_us(tmp_path):
    sock, path = listen(tmp_path)
    notifier = Notifier({"NOTIFY_SOCKET": path})
    results = [notifier.status(f"line {i}") for i in range(200)]  # far beyond the kernel's queue
    assert results[0] is True and results[-1] is False
    assert notifier.enabled, "a full queue is not a reason to stop notifying"
    assert sock.recv(4096) == b"STATUS=line 0"
    assert notifier.watchdog() is True  # room again after one read
    notifier.close()
    sock.close()
