"""systemd's notify protocol: READY=1, STATUS=, WATCHDOG=1, STOPPING=1 as datagrams to $NOTIFY_SOCKET."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """Talks to systemd when it runs us as Type=notify; does nothing otherwise."""

    def __init__(self, env: Mapping[str, str]):
        address = env.get("NOTIFY_SOCKET", "")
        # "@name" is an abstract-namespace socket: the leading "@" stands for a NUL byte.
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self.watchdog_interval: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        watchdog_pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not watchdog_pid or watchdog_pid == str(os.getpid())):
            # Ping at half the timeout, as sd_watchdog_enabled(3) advises.
            self.watchdog_interval = int(usec) / 1_000_000 / 2
        self._socket: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        """True when systemd (or a test) listens."""
        return bool(self.address)

    def send(self, *lines: str) -> bool:
        """Send one datagram of KEY=VALUE lines; a failure is logged once, never raised."""
        if not self.address:
            return False
        try:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # Never block the event loop: a listener that stops reading fills its queue (10 datagrams).
            self._socket.sendto("\n".join(lines).encode(), socket.MSG_DONTWAIT, self.address)
            return True
        except BlockingIOError:
            log.debug("systemd's notify queue is full; dropped %s", lines[0].split("=")[0])
            return False
        except OSError as exc:
            log.warning("cannot notify systemd at %s: %s", self.address.replace("\0", "@"), exc)
            self.address = ""
            return False

    def ready(self, status: str | None = None) -> bool:
        """The service is up."""
        return self.send("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        """Still alive."""
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        """Shutting down."""
        return self.send("STOPPING=1")

    def close(self) -> None:
        """Close the socket."""
        if self._socket is not None:
            self._socket.close()
            self._socket = None
