"""The checks behind topic rules: each value's type and range, with errors naming the topic and the rule."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from typing import Any

from feedbot.errors import RulesError
from feedbot.settings.fold import fold


def check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str, path: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            full = f"{path}.{key}" if path else str(key)
            if hint:
                raise RulesError(f"{where}: {full}: unknown key (did you mean {show(hint[0])}?)")
            raise RulesError(f"{where}: {full}: unknown key (expected one of: {', '.join(allowed)})")


def suggest(topic_id: str, known: Mapping[str, Any]) -> str:
    hint = difflib.get_close_matches(topic_id, list(known), n=1, cutoff=0.6)
    if hint:
        return f" (did you mean {show(hint[0])}?)"
    return f" (known topics: {', '.join(known)})" if known else ""


def number(value: Any, where: str, path: str, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise RulesError(f"{where}: {path}: expected a number, got {show(value)}")
    if value < 0 or (high is not None and value > high):
        span = f"between 0 and {high:g}" if high is not None else "0 or more"
        raise RulesError(f"{where}: {path}: expected a number {span}, got {show(value)}")
    return float(value)


def boolean(value: Any, where: str, path: str) -> bool:
    if not isinstance(value, bool):
        raise RulesError(f"{where}: {path}: expected true or false, got {show(value)}")
    return value


def string(value: Any, where: str, path: str, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise RulesError(f"{where}: {path}: expected a non-empty string, got {show(value)}")
    return value.strip()


def strings(value: Any, where: str, path: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise RulesError(f"{where}: {path}: expected a list of strings, got {show(value)}")
    for index, item in enumerate(value):
        phrase(item, where, f"{path}[{index}]")
    return unique(tuple(value))


def phrase(value: Any, where: str, path: str) -> None:
    if not isinstance(value, str) or not fold(value).strip():
        raise RulesError(f"{where}: {path}: expected a non-empty phrase, got {show(value)}")
    if len(value) > 100:
        raise RulesError(f"{where}: {path}: a phrase is at most 100 characters, got {len(value)}")


def unique(items: tuple) -> tuple:
    return tuple(dict.fromkeys(items))


def term_key(term: str) -> str:
    return term if re.fullmatch(r"[A-Za-z0-9_-]+", term) else f'"{term}"'


def show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
