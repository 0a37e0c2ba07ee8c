"""The outbox: what is owed to each target, drained oldest first under the flood limits."""

from feedbot.outbox.contract import DrainStats, Sender, Sent
from feedbot.outbox.drain import Outbox
from feedbot.outbox.pacing import Pacing
from feedbot.outbox.targets import CONSOLE, TELEGRAM, digest_targets_for, targets_for

__all__ = ["CONSOLE", "TELEGRAM", "DrainStats", "Outbox", "Pacing", "Sender", "Sent", "digest_targets_for",
           "targets_for"]
