"""benchmarks/run_all.py rewrites the sections it ran and keeps every other section, known or not."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run_all(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    monkeypatch.setitem(sys.modules, "run_all", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUTPUT", tmp_path / "BENCHMARKS.md")
    return module


def test_a_partial_run_keeps_hand_written_sections_in_place(tmp_path, monkeypatch):
    run_all = _run_all(tmp_path, monkeypatch)
    info = {"cpu": "x", "nproc": "2", "ram": "1", "python": "3", "os": "L", "commit": "c"}
    run_all.OUTPUT.write_text(
        "# old\n\n<!-- section:cycle -->\nold cycle\n<!-- /section:cycle -->\n"
        "<!-- section:memory -->\nold memory\n<!-- /section:memory -->\n"
        "<!-- section:telegram -->\ncopied by hand\n<!-- /section:telegram -->\n"
        "<!-- section:web -->\nold web\n<!-- /section:web -->\n", encoding="utf-8")
    run_all.write_report({"cycle": "new cycle"}, info, "python benchmarks/run_all.py --only cycle")
    text = run_all.OUTPUT.read_text(encoding="utf-8")
    assert "new cycle" in text and "old cycle" not in text
    assert text.index("old memory") < text.index("copied by hand") < text.index("old web")
