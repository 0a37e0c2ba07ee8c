"""Run every benchmark and the fault drills, and write BENCHMARKS.md (what `make bench` runs).

    .venv/bin/python benchmarks/run_all.py                 every benchmark, the quick and the full drills
    .venv/bin/python benchmarks/run_all.py --quick         quick benchmark sizes, quick drills only
    .venv/bin/python benchmarks/run_all.py --only memory   one benchmark (others' sections are kept)
    .venv/bin/python benchmarks/run_all.py --no-drills     benchmarks only (the drill section is kept)

A benchmark script that is missing, fails or times out is recorded as "not run: reason"; the others go on.
Each section carries its own command and date, so a partial run leaves the other sections as they were.
Scripts may print `BENCH_JSON {"title": …, "rows": [{"measurement", "feedbot", "target", "ratio"}]}`;
other output is read as a table ("name  value" columns, "key: value" lines, or a JSON object line).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / "benchmarks"
OUTPUT = ROOT / "BENCHMARKS.md"
PYTHON = sys.executable


@dataclass(frozen=True)
class Bench:
    """One benchmark script and what it is compared with."""

    name: str
    script: str
    title: str
    usual: str  # the usual approach the ratio is taken against
    args: tuple[str, ...] = ()
    quick_args: tuple[str, ...] = ()
    timeout: float = 1200.0


BENCHMARKS = (
    Bench("poll", "bench_poll.py", "Polling 1,000 feed sources and the 5,000-post category page",
          "a sequential `feedparser.parse(url)` loop over the same URLs (what typical RSS-to-Telegram bots do)",
          quick_args=("--quick",)),
    Bench("cycle", "bench_cycle.py", "Whole-process poll cycle (`feedbot once`): 300 feeds on one host",
          "newsboat, a sequential feedparser loop and rss2email, in the same run (issue 14's targets)",
          quick_args=("--feeds", "100")),
    Bench("scale", "bench_scale.py", "The daemon at 10,000 feed sources (`feedbot run`, 10-minute interval)",
          "issue 14's targets (≤ 10 % of one core, ≤ 200 MB RSS, p99 poll lateness ≤ 5 s)",
          quick_args=("--sources", "1000", "--interval", "60", "--duration", "90", "--settle", "15"),
          timeout=2400.0),
    Bench("classify", "bench_classify.py", "Classification (one core)",
          "the target of 1,000 articles/s from body_html"),
    Bench("routing", "bench_routing.py", "Routing quality: tuned on dev.jsonl, validated on dev2.jsonl",
          "the issue's targets (dev2: P ≥ 0.90, R ≥ 0.85 per channel; dev: P ≥ 0.95, R ≥ 0.90)"),
    Bench("feeds", "bench_feeds.py", "Feed rebuild (every channel × 3 formats × 50 entries)",
          "rewriting every feed file on every change (the first rebuild)", quick_args=("--repeat", "3")),
    Bench("drain", "bench_drain.py", "Telegram drain: 200 messages over 4 chats against the Bot API double",
          "the theoretical minimum makespan under Telegram's limits (20/min per chat, 30/s overall)"),
    Bench("memory", "bench_memory.py", "Memory, database size and start-up",
          "the issue's targets (peak RSS ≤ 150 MB, start-up ≤ 1.5 s)", quick_args=("--quick",)),
    Bench("web", "bench_web.py", "Web pages at 100,000 stored articles",
          "the issue's target (each page ≤ 50 ms median)", quick_args=("--quick",)),
)


@dataclass
class Result:
    bench: Bench
    command: str
    started: str
    seconds: float = 0.0
    status: str = "ok"  # ok | not run: reason
    stdout: str = ""
    stderr: str = ""
    tables: list[tuple[str, list[list[str]], list[str]]] = field(default_factory=list)  # (title, rows, header)


# ---- the machine ---------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    cpu = "unknown"
    with _suppress():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with _suppress():
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    commit = "unknown"
    with _suppress():
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
        commit += " (with uncommitted changes)" if dirty else ""
    return {"nproc": str(usable), "cpu": cpu, "ram": ram, "python": platform.python_version(),
            "os": f"{platform.system()} {platform.release()}", "commit": commit}


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], Exception)  # type: ignore[arg-type]


# ---- running and reading a benchmark ---------------------------------------------------------------


def run_bench(bench: Bench, quick: bool) -> Result:
    script = BENCH_DIR / bench.script
    args = [*bench.args, *(bench.quick_args if quick else ())]
    command = " ".join([".venv/bin/python", f"benchmarks/{bench.script}", *args])
    result = Result(bench, command, time.strftime("%Y-%m-%d %H:%M:%S %Z"))
    if not script.exists():
        result.status = f"not run: benchmarks/{bench.script} does not exist (yet)"
        return result
    began = time.monotonic()
    print(f"== {command}", flush=True)
    try:
        done = subprocess.run([PYTHON, str(script), *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=bench.timeout)
    except subprocess.TimeoutExpired as exc:
        result.seconds = time.monotonic() - began
        result.stdout = _text(exc.stdout)
        result.status = f"not run: timed out after {bench.timeout:.0f} s"
        return result
    result.seconds = time.monotonic() - began
    result.stdout, result.stderr = done.stdout, done.stderr
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or done.stdout.strip().splitlines() or ["no output"])[-1]
        result.status = f"not run: exit code {done.returncode}: {last[:300]}"
        return result
    result.tables = read_tables(done.stdout)
    if not result.tables:
        result.status = "not run: the script printed nothing readable"
    return result


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def read_tables(stdout: str) -> list[tuple[str, list[list[str]], list[str]]]:
    """BENCH_JSON blocks as they are; everything else as one measurement | result table."""
    tables = []
    rows: list[list[str]] = []
    for raw in stdout.splitlines():
        line = raw.rstrip()
        if not line.strip() or set(line.strip()) <= {"-", " ", "="}:
            continue
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON "):])
            header = ["measurement", "feedbot", "target", "ratio"]
            tables.append((data.get("title", ""), [[_cell(r.get(k, "")) for k in header] for r in data["rows"]],
                           header))
            continue
        if line.lstrip().startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                pass
            else:
                rows += [[str(k), _cell(v)] for k, v in data.items()]
                continue
        columns = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if columns == ["measurement", "result"]:
            continue
        if len(columns) == 2:
            rows.append([columns[0].rstrip(":"), columns[1]])
        elif ": " in line:
            key, value = line.strip().split(": ", 1)
            rows.append([key, value])
        else:
            rows.append([line.strip(), ""])
    if rows and not tables:  # a script that prints BENCH_JSON says everything there; the rest is for humans
        tables.append(("", rows, ["measurement", "result"]))
    return tables


def _cell(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


# ---- ratios against the usual approach --------------------------------------------------------------


def ratios(result: Result) -> list[str]:
    """The figures that compare feedbot with the usual approach, read from the benchmark's own output."""
    flat = {row[0]: row[1] for _, rows, _ in result.tables for row in rows if len(row) >= 2}
    out: list[str] = []
    name = result.bench.name
    with _suppress():
        if name == "poll":
            out += [f"{k}: **{v}**" for k, v in flat.items() if k.startswith("speed-up")]
            steady = flat.get("cycle, all 304 (conditional GET)", "")
            cpu = re.search(r"([\d.]+) ms CPU/source", steady)
            if cpu:
                out.append(f"all-304 cycle CPU: **{cpu.group(1)} ms per source** (target < 1 ms)")
        elif name in ("cycle", "scale"):
            out += [f"{r[0]}: **{r[1]}** (target {r[2]}; {r[3]})" for _, rows, _ in result.tables for r in rows
                    if len(r) >= 4 and r[2]]
        elif name == "classify":
            rate = float(flat["articles/s"].replace(",", ""))
            out.append(f"{rate:,.0f} articles/s = **{rate / 1000:.1f}×** the 1,000 articles/s target")
        elif name == "feeds":
            first = float(re.search(r"([\d.]+) ms", flat["first rebuild"]).group(1))
            same = float(re.search(r"([\d.]+) ms", flat["unchanged rebuild"]).group(1))
            out.append(f"unchanged rebuild {same:.1f} ms vs rewriting everything {first:.1f} ms: "
                       f"**{first / same:.1f}× faster**, 0 files written")
        elif name == "drain":
            makespan, minimum = float(flat["makespan_s"]), float(flat["theoretical_min_s"])
            out.append(f"makespan {makespan:.2f} s vs theoretical minimum {minimum:.2f} s: "
                       f"**{makespan / minimum:.3f}×** (target ≤ 1.10×); 429s: **{flat.get('http_429')}** (target 0)")
        elif name == "memory":
            for _, rows, header in result.tables:
                if header[:2] == ["measurement", "feedbot"]:
                    out += [f"{r[0].strip()}: **{r[3]}**" for r in rows if r[3]]
    return out


# ---- drills ------------------------------------------------------------------------------------------


def run_drills(full: bool) -> dict:
    """The quick drills (tests/test_drills.py) and, when full, the long ones (-m drill); figures and outcomes."""
    report = Path(tempfile.mkstemp(prefix="drills-", suffix=".jsonl")[1])
    junit = Path(tempfile.mkstemp(prefix="drills-", suffix=".xml")[1])
    env = {**os.environ, "FEEDBOT_DRILL_REPORT": str(report)}
    quick_files = ["tests/test_drills.py", "tests/test_drills_exactly_once.py", "tests/test_drills_poison.py"]
    full_files = ["tests/test_drills_long.py", "tests/test_drills_exactly_once.py", "tests/test_drills_poison.py"]
    runs = [("quick", [PYTHON, "-m", "pytest", *quick_files, "-q", "-p", "no:cacheprovider"], quick_files)]
    if full:
        runs.append(("full", [PYTHON, "-m", "pytest", "-m", "drill", *full_files, "-q",
                              "-p", "no:cacheprovider"], full_files))
    outcomes: dict[str, str] = {}
    commands = []
    began = time.monotonic()
    for label, command, files in runs:
        shown = " ".join([".venv/bin/python", "-m", "pytest", *(["-m", "drill"] if label == "full" else []), *files])
        commands.append(shown)
        print(f"== {shown}", flush=True)
        done = subprocess.run([*command, f"--junitxml={junit}"], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=3600)
        sys.stdout.write(done.stdout[-3000:])
        with _suppress():
            for case in ET.parse(junit).getroot().iter("testcase"):
                state = "passed"
                for child in case:
                    if child.tag in ("failure", "error"):
                        state = "FAILED: " + (child.get("message") or "")[:200]
                    elif child.tag == "skipped":
                        kind = "xfail" if child.get("type") == "pytest.xfail" else "skipped"
                        state = f"{kind}: " + (child.get("message") or "")[:300]
                outcomes[case.get("name", "?")] = state
    figures = []
    with _suppress():
        figures = [json.loads(line) for line in report.read_text(encoding="utf-8").splitlines() if line.strip()]
    report.unlink(missing_ok=True)
    junit.unlink(missing_ok=True)
    return {"commands": commands, "outcomes": outcomes, "figures": figures,
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": time.monotonic() - began}


def render_drills(drills: dict) -> str:
    out = ["## Fault drills", "",
           f"Commands: {'; '.join(f'`{c}`' for c in drills['commands'])} — {drills['started']}, "
           f"{drills['seconds']:.0f} s in all. The real `feedbot run` process against the loopback sample site "
           "and Bot API double (Telegram's real pacing unless stated); every figure below is measured, the tests "
           "assert the outcomes (nothing lost, duplicates, integrity), never timings.", "",
           "| test | outcome |", "|---|---|"]
    out += [f"| `{name}` | {_cell(state)} |" for name, state in drills["outcomes"].items()]
    out += [""]
    plain = [f for f in drills["figures"] if "kind" not in f]
    faults = [f for f in drills["figures"] if "kind" in f]
    if plain:
        out += ["| drill | posts stored | messages lost / expected | duplicates | other figures |",
                "|---|---|---|---|---|"]
        for f in plain:
            rest = {k: v for k, v in f.items() if k not in ("drill", "at", "posts", "stored", "lost_messages",
                                                            "expected_messages", "duplicates", "missing_in_db")}
            out.append(f"| {_cell(f['drill'])} | {f.get('stored')}/{f.get('posts')} (missing {f.get('missing_in_db')}) "
                       f"| {f.get('lost_messages')}/{f.get('expected_messages')} | {f.get('duplicates')} | "
                       + _cell("; ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in rest.items())) + " |")
        out += [""]
    if faults:
        out += ["| drill | jekyll source (category page) | feed source (RSS) | after healing |", "|---|---|---|---|"]
        for f in faults:
            if f["kind"] == "(exit)":
                out.append(f"| {_cell(f['drill'])} | exit code {f.get('final_exit_code')} | "
                           f"tracebacks in the log: {f.get('tracebacks')} | |")
                continue
            if "jekyll_polls" in f:
                jekyll = f"{'/'.join(f['jekyll_polls'])}: {f.get('jekyll_error') or 'no error'}"
                feed = f"{'/'.join(f['feed_polls'])}: {f.get('feed_error') or 'no error'}"
                after = (f"polls {'/'.join(f['healed'])}; the post added during the fault stored: "
                         f"jekyll {f['jekyll_has_post']}, feed {f['feed_has_post']}")
            else:
                jekyll = f"{f['jekyll_failures']} failure(s): {f.get('jekyll_error') or 'no error'}"
                feed = f"{f['feed_failures']} failure(s): {f.get('feed_error') or 'no error'}"
                after = (f"post stored {f['stored_after_heal_s']} s after healing; "
                         f"{f['index_requests_during_fault']} index requests during the fault; lost {f['lost']}")
            out.append(f"| {_cell(f['drill'])} | {_cell(jekyll)} | {_cell(feed)} | {_cell(after)} |")
        out += [""]
    return "\n".join(out)


# ---- BENCHMARKS.md -----------------------------------------------------------------------------------


def render_bench(result: Result) -> str:
    bench = result.bench
    out = [f"## {bench.title}", "", f"Command: `{result.command}` — {result.started}, {result.seconds:.0f} s. "
           f"Compared with: {bench.usual}.", ""]
    if result.status != "ok":
        out += [f"**{result.status}**", ""]
        if result.stdout.strip() or result.stderr.strip():
            out += ["<details><summary>output</summary>", "", "```", (result.stdout + result.stderr)[-4000:].strip(),
                    "```", "", "</details>", ""]
        return "\n".join(out)
    found = ratios(result)
    if found:
        out += ["Against the usual approach / target:", ""] + [f"- {line}" for line in found] + [""]
    for title, rows, header in result.tables:
        if title:
            out += [f"**{title}**", ""]
        out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(_cell(c) for c in row + [""] * (len(header) - len(row))) + " |" for row in rows]
        out += [""]
    return "\n".join(out)


# Hand-written sections kept as they are (run_all never rewrites them), placed after the named benchmark.
NOTES = ("cycle-notes",)
SECTION = re.compile(r"<!-- section:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /section:(?P=name) -->\n", re.S)


def write_report(sections: dict[str, str], info: dict[str, str], command: str) -> None:
    """Replace the sections that ran this time; keep the others from the existing file."""
    kept = {}
    if OUTPUT.exists():
        kept = {m.group("name"): m.group("body") for m in SECTION.finditer(OUTPUT.read_text(encoding="utf-8"))}
    previous = list(kept)
    kept.update(sections)
    order = [b.name for b in BENCHMARKS] + ["drills"]
    order[order.index("scale") + 1:order.index("scale") + 1] = list(NOTES)
    # A section run_all does not know (copied in by hand, e.g. "telegram") stays after the one it followed.
    for i, name in enumerate(previous):
        if name not in order:
            after = next((p for p in reversed(previous[:i]) if p in order), None)
            order.insert(order.index(after) + 1 if after else 0, name)
    head = [
        "# feedbot benchmarks and fault drills", "",
        f"Written by `{command}` (`make bench` runs it without options) on "
        f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; sections not re-run this time keep their own date and command.", "",
        "| machine | |", "|---|---|",
        f"| CPU | {info['cpu']} |", f"| usable cores (nproc) | {info['nproc']} |", f"| RAM | {info['ram']} |",
        f"| Python | {info['python']} |", f"| OS | {info['os']} |", f"| commit | {info['commit']} |", "",
    ]
    body = [f"<!-- section:{name} -->\n{kept[name].rstrip()}\n<!-- /section:{name} -->\n" for name in order
            if name in kept]
    OUTPUT.write_text("\n".join(head) + "\n" + "\n".join(body), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="quick benchmark sizes, quick drills only")
    parser.add_argument("--only", action="append", choices=[b.name for b in BENCHMARKS] + ["drills"],
                        help="run only these (repeatable)")
    parser.add_argument("--no-drills", action="store_true", help="skip the drills")
    args = parser.parse_args()
    wanted = set(args.only or [b.name for b in BENCHMARKS] + ([] if args.no_drills else ["drills"]))
    command = "python benchmarks/run_all.py" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    sections: dict[str, str] = {}
    failed = []
    for bench in BENCHMARKS:
        if bench.name not in wanted:
            continue
        result = run_bench(bench, args.quick)
        if result.status != "ok":
            failed.append(f"{bench.name}: {result.status}")
        sections[bench.name] = render_bench(result)
        write_report(sections, machine(), command)  # after each one: an interrupted run keeps what it measured
    if "drills" in wanted:
        sections["drills"] = render_drills(run_drills(full=not args.quick))
        write_report(sections, machine(), command)
    print(f"\nwrote {OUTPUT}")
    for line in failed:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
