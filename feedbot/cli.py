"""The `feedbot` command: thin click commands that parse arguments, call the App and print."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

import click

from feedbot import __version__
from feedbot.errors import FeedbotError
from feedbot.ops.logs import setup_logging
from feedbot.settings.config import Config, find_config, load_config, parse_config
from feedbot.settings.paths import check_state_dir
from feedbot.settings.secrets import redact
from feedbot.workers import start_server, worker_count

if TYPE_CHECKING:
    from feedbot.app import App

EXIT_USAGE = 2  # bad configuration or arguments: nothing was written


@dataclass
class CliState:
    """What the group options resolved to; the config is loaded only by commands that need it."""

    config_option: str | None
    verbosity: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    _config: Config | None = None

    def config(self, *, state_dir: Literal["check", "create"] | None = None) -> Config:
        """Load and validate the configuration once, or exit 2 with the error; ``state_dir``: check it (or
        create it) too."""
        if self._config is None:
            try:
                self._config = load_config(find_config(self.config_option, self.env), self.env)
            except FeedbotError as exc:
                fail(str(exc), EXIT_USAGE)
        if state_dir is not None:
            try:
                check_state_dir(self._config, create=state_dir == "create")
            except FeedbotError as exc:
                fail(str(exc), EXIT_USAGE)
        return self._config

    def rules_config(self) -> Config:
        """The configuration when --config was given, else the built-in defaults (no file, no state)."""
        return self.config() if self.config_option else parse_config({}, None, {})

    @property
    def log_level(self) -> str:
        """-v / -q adjust the configured level."""
        if self.verbosity > 0:
            return "debug"
        if self.verbosity < 0:
            return "warning" if self.verbosity == -1 else "error"
        return self._config.log_level if self._config else "info"


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line to stderr and exit (URL credentials and token shapes redacted)."""
    click.echo(f"feedbot: {redact(message)}", err=True)
    sys.exit(code)


def _run(coroutine: Any) -> Any:
    try:
        return asyncio.run(coroutine)
    except FeedbotError as exc:
        fail(str(exc), 1)


def with_app(state: CliState, config: Config, work: Callable[[App], Any], *, read_only: bool = False,
             exclusive: bool = True) -> Any:
    """Open the App's state, run ``work`` (no event loop needed), close it; a FeedbotError exits 1."""
    from feedbot.app import App
    try:
        with App(config, state.env, read_only=read_only, exclusive=exclusive) as app:
            return work(app)
    except FeedbotError as exc:
        fail(str(exc), 1)


def with_app_async(state: CliState, config: Config, work: Callable[[App], Awaitable[Any]]) -> Any:
    """Open the App in an event loop (network work), await ``work``, close everything; a FeedbotError exits 1."""
    from feedbot.app import App

    async def session() -> Any:
        async with App(config, state.env) as app:
            return await work(app)

    return _run(session())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="feedbot")
@click.option("--config", "-c", "config_option", metavar="FILE",
              help="Configuration file (default: $FEEDBOT_CONFIG, ./feedbot.toml, /etc/feedbot/feedbot.toml).")
@click.option("-v", "--verbose", count=True, help="More log output (debug).")
@click.option("-q", "--quiet", count=True, help="Less log output (warnings, then errors only).")
@click.pass_context
def cli(ctx: click.Context, config_option: str | None, verbose: int, quiet: int) -> None:
    """Watch Chinese climate-policy news and republish it as topic feeds and Telegram channels."""
    ctx.obj = CliState(config_option=config_option, verbosity=verbose - quiet)


@cli.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def check_config(state: CliState, as_json: bool) -> None:
    """Validate the configuration (and that the state directory is usable) and print it resolved (secrets redacted)."""
    resolved = state.config(state_dir="check").as_dict()
    if as_json:
        click.echo(json.dumps(resolved, ensure_ascii=False, indent=2))
        return
    click.echo(f"configuration OK: {resolved['config_file'] or 'built-in defaults (no file found)'}")
    click.echo(_toml_like(resolved))


def _toml_like(data: dict[str, Any], prefix: str = "") -> str:
    lines: list[str] = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, (dict, list))}
    for key, value in scalars.items():
        lines.append(f"{key} = {json.dumps(value, ensure_ascii=False)}")
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            lines.append(f"\n[{name}]")
            lines.append(_toml_like(value, name + "."))
        elif isinstance(value, list):
            for item in value:
                lines.append(f"\n[[{name}]]")
                lines.append(_toml_like(item, name + "."))
    return "\n".join(line for line in lines if line != "")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status(state: CliState, as_json: bool) -> None:
    """Show sources (last result, next check), articles per topic and the outbox."""
    config = state.config()
    if not config.db_path.exists():
        fail(f"no state yet at {config.db_path}: run `feedbot once` or `feedbot run` first", 1)
    from feedbot.ops.status import render_status  # `status` only

    report = with_app(state, config, lambda app: app.status(), read_only=True)
    click.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else render_status(report))


def _start_logging(state: CliState, config: Config) -> None:
    token = config.telegram.token.reveal() if config.telegram.token else ""
    setup_logging(state.log_level, env=state.env, secrets=[token, *config.url_secrets()])


@cli.command()
@click.pass_obj
def run(state: CliState) -> None:
    """Run the daemon: poll on schedule, publish feeds and Telegram messages, serve the web pages."""
    config = state.config(state_dir="create")
    _start_logging(state, config)
    start_server(worker_count(config.pipeline.workers))  # a daemon prepares entries sooner or later
    from feedbot.daemon import Daemon  # the commands' import stays light; the workers' server starts first

    # What start-up allocated (modules, the configuration, the compiled rules) lives as long as the process:
    # frozen, the collector no longer scans it at every full collection, nor at exit (BENCHMARKS.md).
    gc.freeze()
    sys.exit(_run(Daemon(config, state.env).run_forever()))


@cli.command()
@click.pass_obj
def once(state: CliState) -> None:
    """Run one full cycle (poll every source, classify, publish, drain) and exit."""
    config = state.config(state_dir="create")
    _start_logging(state, config)
    if not config.db_path.exists():  # a first cycle: entries are coming (an unchanged one starts no workers)
        start_server(worker_count(config.pipeline.workers))
    from feedbot.daemon import Daemon  # the commands' import stays light; the workers' server starts first

    gc.freeze()  # see run()
    sys.exit(_run(Daemon(config, state.env).run_once()))


@cli.command()
@click.option("--state-dir", type=click.Path(file_okay=False), default="state/demo", show_default=True,
              help="Where the demo keeps its database and feeds.")
@click.option("--port", type=int, default=8080, show_default=True, help="Web server port (0: any free port).")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: Ctrl-C).")
@click.pass_obj
def demo(state: CliState, state_dir: str, port: int, duration: float | None) -> None:
    """Run the whole pipeline offline against the bundled sample site on loopback."""
    setup_logging(state.log_level, env=state.env)
    from feedbot.demo import run_demo  # imports the sample site's web server: only for `demo`

    sys.exit(_run(run_demo(Path(state_dir).resolve(), port, state.env, duration)))


@cli.command()
@click.argument("source_id")
@click.option("--since", required=True, metavar="DATE", help="Fetch posts published on or after this date.")
@click.pass_obj
def backfill(state: CliState, source_id: str, since: str) -> None:
    """Fetch a source's older posts on demand, politely."""
    config = state.config(state_dir="create")
    source_config = next((s for s in config.sources if s.id == source_id), None)
    if source_config is None:
        fail(f"no source {source_id!r} in the configuration (have: {', '.join(s.id for s in config.sources)})",
             EXIT_USAGE)
    if source_config.kind != "jekyll":
        fail(f"source {source_id!r} is a {source_config.kind!r} source: a feed holds only its current entries, "
             "backfill needs a jekyll category page", EXIT_USAGE)
    try:
        first_day = date.fromisoformat(since)
    except ValueError:
        fail(f"--since {since!r}: expected a date like 2024-01-31", EXIT_USAGE)
    bars = []

    def on_plan(total: int) -> None:
        click.echo(f"{source_id}: {total} older post(s) since {first_day} to fetch "
                   f"({config.fetch.per_host} at a time, {config.fetch.delay:g}s apart)", err=True)
        bars.append(click.progressbar(length=total, label="fetching", file=sys.stderr))
        bars[0].__enter__()

    try:
        report = with_app_async(state, config, lambda app: app.backfill(
            source_id, first_day, on_plan=on_plan, on_post=lambda link, error: bars[0].update(1)))
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    for error in report.errors:
        click.echo(f"feedbot: {redact(error)}", err=True)
    click.echo(f"{source_id}: {report.saved} of {report.planned} post(s) stored"
               + (f", {len(report.errors)} failed (run again to retry them)" if report.errors else ""))
    if report.errors and not report.saved:
        sys.exit(1)


@cli.command()
@click.pass_obj
def reclassify(state: CliState) -> None:
    """Classify every stored article again with the current rules and rebuild the feeds (no chat messages)."""
    config = state.config()
    if not config.db_path.exists():
        fail(f"no state yet at {config.db_path}: nothing to reclassify", 1)
    total, changed, files = with_app(state, config, lambda app: app.reclassify())
    click.echo(f"{total} article(s) classified again, {changed} changed channel(s); "
               f"{files} feed file(s) rewritten")


@cli.command()
@click.argument("target", required=False)
@click.pass_obj
def unblock(state: CliState, target: str | None) -> None:
    """Retry a blocked chat (403, chat not found) now: TARGET is a topic, @chat or chat id (default: all)."""
    config = state.config()
    if not config.db_path.exists():
        fail(f"no state yet at {config.db_path}: nothing is blocked", 1)
    # Beside a running service on purpose (no state-dir lock): its next drain, within 30 s, tries the chat.
    cleared = with_app(state, config, lambda app: app.unblock(target), exclusive=False)
    if not cleared:
        click.echo("nothing was blocked" + (f" for {target}" if target else ""))
        return
    for t in cleared:
        click.echo(f"{t}: unblocked; the next drain sends its pending messages")


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
def classify(state: CliState, file: str | None) -> None:
    """Classify JSON-lines articles from FILE or stdin; one JSON line out per article."""
    from feedbot.app import App

    app = App(state.rules_config())  # touches no state: nothing is opened
    name = file if file and file != "-" else "<stdin>"
    try:
        # surrogateescape: an undecodable byte reaches read_articles, which names its line (a strict decoder
        # would fail a whole chunk ahead, at no particular line).
        with click.open_file(file or "-", encoding="utf-8", errors="surrogateescape") as lines:
            for record in app.classify_lines(lines, name):
                click.echo(json.dumps(record, ensure_ascii=False))
    except OSError as exc:
        fail(f"{name}: cannot read: {exc.strerror or exc}", EXIT_USAGE)
    except FeedbotError as exc:
        fail(str(exc), 1)


@cli.command("eval")
@click.option("--corpus", "corpora", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="Labelled JSON lines (id, title, body_html, labels); repeat for several corpora.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--errors", is_flag=True, help="List every miss with the scope, focus and evidence that decided it.")
@click.pass_obj
def evaluate(state: CliState, corpora: tuple[str, ...], as_json: bool, errors: bool) -> None:
    """Precision, recall and F1 per topic on labelled corpora, with the confusion."""
    from feedbot.app import App

    try:
        output = App(state.rules_config()).evaluate(corpora, as_json=as_json, errors=errors)
    except FeedbotError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(output, nl=False)


@cli.command()
@click.argument("target")
@click.option("--id", "article_id", metavar="ID", help="Which article of a .jsonl file (default: the first).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def explain(state: CliState, target: str, article_id: str | None, as_json: bool) -> None:
    """Show each topic's score, evidence and excerpt for one article (URL or file)."""
    text = with_app_async(state, state.rules_config(), lambda app: app.explain(target, article_id, as_json=as_json))
    click.echo(text, nl=False)


@cli.command()
@click.argument("url")
@click.pass_obj
def probe(state: CliState, url: str) -> None:
    """Say what URL is (feed, Jekyll category page, news list page), what it yields, and print a [[sources]] block."""
    report = with_app_async(state, state.rules_config(), lambda app: app.probe(url))
    click.echo(report.text(), nl=False)


@cli.group()
def sources() -> None:
    """Manage sources."""


@sources.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--write", is_flag=True, help="Append the blocks to the configuration file instead of printing them.")
@click.pass_obj
def import_sources(state: CliState, file: str, write: bool) -> None:
    """[[sources]] blocks for the feeds of an OPML file (those not configured yet)."""
    from feedbot.app import App

    config = state.rules_config()
    try:
        blocks = App(config).import_opml(file)  # reads the file only: no state is opened
    except FeedbotError as exc:
        fail(str(exc), EXIT_USAGE)
    if not blocks:
        click.echo("no new feeds in " + file, err=True)
        return
    text = "\n\n".join(blocks) + "\n"
    if not write:
        click.echo(text, nl=False)
        return
    if config.path is None:
        fail("--write needs a configuration file (--config FILE)", EXIT_USAGE)
    combined = config.path.read_text(encoding="utf-8").rstrip("\n") + "\n\n" + text
    try:  # the file must stay valid: check the result before writing it
        parse_config(tomllib.loads(combined), config.path, state.env)
    except (FeedbotError, tomllib.TOMLDecodeError) as exc:
        fail(f"{config.path}: not changed: the new blocks would not load: {exc}", EXIT_USAGE)
    config.path.write_text(combined, encoding="utf-8")
    click.echo(f"{len(blocks)} source(s) appended to {config.path}", err=True)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="feedbot")


if __name__ == "__main__":  # pragma: no cover
    main()

