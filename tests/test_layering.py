"""The package's layering holds: every import points to the same or an earlier stage (checked with ast)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "feedbot"

# The stages in the order an article travels; a module may import only from its own stage or earlier ones.
STAGES = (
    ("feedbot", "feedbot.model", "feedbot.errors", "feedbot.clock"),
    ("feedbot.settings",),
    ("feedbot.sources",),
    ("feedbot.store",),
    ("feedbot.classify",),
    ("feedbot.pipeline", "feedbot.prepare", "feedbot.dedupe", "feedbot.workers"),
    ("feedbot.outbox",),
    ("feedbot.publish",),
    ("feedbot.web",),
    ("feedbot.ops",),
    ("feedbot.app",),
    ("feedbot.daemon", "feedbot.loops", "feedbot.demo"),
    ("feedbot.cli", "feedbot.__main__"),
)


def stage_of(module: str) -> int:
    """The stage of a feedbot module: its longest matching prefix in STAGES."""
    best, rank = "", -1
    for number, names in enumerate(STAGES):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > len(best):
                best, rank = name, number
    if rank < 0:
        raise AssertionError(f"{module} belongs to no stage: add it to STAGES")
    return rank


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every feedbot or tests import in a file, at any depth (function bodies too)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return [(line, name) for line, name in found if name.split(".")[0] in ("feedbot", "tests")]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_stage_table_knows_every_module():
    unknown = [module_name(p) for p in MODULES if not _known(module_name(p))]
    assert unknown == []


def _known(module: str) -> bool:
    try:
        stage_of(module)
    except AssertionError:
        return False
    return True


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_imports_point_to_the_same_or_an_earlier_stage(path: Path):
    importer = module_name(path)
    upward = []
    for line, imported in imports_of(path):
        assert not imported.startswith("tests"), f"{path.name}:{line}: the package imports test code ({imported})"
        if stage_of(imported) > stage_of(importer):
            upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert upward == []


def test_the_checker_catches_an_upward_import(tmp_path):
    # The rule itself: a store module reaching up into the publishers is what must fail.
    assert stage_of("feedbot.publish.feeds") > stage_of("feedbot.store.articles")
    assert stage_of("feedbot.model") < stage_of("feedbot.sources.http")
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from feedbot.publish import feeds\n", encoding="utf-8")
    assert imports_of(bad) == [(2, "feedbot.publish")]


@pytest.mark.parametrize("name", ["Store", "Fetcher", "TelegramPublisher", "ConsolePublisher"])
def test_long_lived_resources_are_built_only_by_the_composition_root(name: str):
    builders = set()
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name:
                builders.add(module_name(path))
    assert builders == {"feedbot.app"}
