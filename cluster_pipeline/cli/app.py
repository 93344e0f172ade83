"""The command group and what every command shares: ``--namespace``, ``--root`` and ``--json``
declared once and accepted before or after the command, one-line errors (JSON under ``--json``),
exit statuses, and a reader that closes the pipe early (``… | head``) taken in stride."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError

if TYPE_CHECKING:
    from dagster import DagsterInstance

    from cluster_pipeline.core.config.model import ClusterConfig
    from cluster_pipeline.core.store.lake import Lake

EXIT_ERROR = 2
EXIT_FAILED_EXECUTION = 1
EXIT_INTERRUPTED = 130
EXIT_TIMEOUT = 124  # as GNU timeout: `executions wait --timeout` gave up
COMMON_OPTIONS_HELP = "--namespace, --root and --json may be given before or after the command."


@dataclass
class Settings:
    """The shared options, from wherever on the command line they were given (the last one wins)."""

    namespace: str = "default"
    root: str | None = None
    json: bool = False

    def lake(self) -> Lake:
        """The deployment's lake (``deployment.environment_lake``): a folder, or S3 with ``DAGSTER_DEPLOYMENT=s3``."""
        from cluster_pipeline.deployment import environment_lake

        return environment_lake(self.root)

    def emit(self, data: Any, text: str) -> None:
        try:
            click.echo(json.dumps(data, indent=2, default=str) if self.json else text)
        except BrokenPipeError:  # `… | head` has read what it wanted: the command still succeeded
            _silence_stdout()


def _silence_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def current_settings() -> Settings:
    return click.get_current_context().find_root().ensure_object(Settings)


def _remember(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is None or value is False:  # not given here: keep what an earlier position said
            return
        settings = ctx.find_root().ensure_object(Settings)
        if name == "root":
            value = str(Path(value).expanduser().resolve())
            os.environ["CLUSTER_PIPELINE_ROOT"] = value  # the Dagster instance lives in the data root too
        setattr(settings, name, value)

    return callback


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--namespace``, ``--root``, ``--json`` on a group or command; any position sets them."""
    for decorator in (
        click.option("--json", "json_", is_flag=True, default=None, expose_value=False, is_eager=True,
                     callback=_remember("json"), help="Print JSON (errors too, on stderr)."),
        click.option("--root", default=None, expose_value=False, is_eager=True, callback=_remember("root"),
                     metavar="DIR", help="Data folder (default: $CLUSTER_PIPELINE_ROOT or ./.cluster_data)."),
        click.option("--namespace", default=None, expose_value=False, is_eager=True,
                     callback=_remember("namespace"), help="Namespace to work in (default: default)."),
    ):  # fmt: skip
        command = decorator(command)
    return command


def dagster_instance() -> DagsterInstance:
    from cluster_pipeline.runs import open_instance

    return open_instance()


def parse_timestamp(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(f"Bad timestamp {text!r}: use ISO 8601, e.g. 2025-11-13T13:20:40Z.") from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_json_option(text: str, option: str) -> Any:
    """An option's JSON value, given inline or as ``@FILE``."""
    source = Path(text[1:]).read_text() if text.startswith("@") else text
    try:
        return json.loads(source)
    except json.JSONDecodeError as error:
        raise ConfigurationError(f"{option} is not valid JSON ({error.msg} at line {error.lineno}).") from None


def warn(message: str) -> None:
    settings = current_settings()
    click.echo(json.dumps({"warning": message}) if settings.json else f"warning: {message}", err=True)


def configuration(lake: Lake, reference: str) -> ClusterConfig:
    """The namespace's configuration named ``reference``, or whose ``clust_…`` id it is."""
    from cluster_pipeline.core.config.store import ConfigStore

    return ConfigStore(lake).resolve(current_settings().namespace, reference)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=COMMON_OPTIONS_HELP)
@common_options
def cli() -> None:
    """Cluster document collections by their embeddings, through Dagster."""


def _error(kind: str, message: str, as_json: bool) -> None:
    text = json.dumps({"error": {"type": kind, "message": message}}) if as_json else f"error: {message}"
    click.echo(text, err=True)


def _guarded(run: Callable[[], int], wants_json: Callable[[], bool]) -> int:
    """Exit statuses and one-line errors for everything a command can end with."""
    stdout = sys.stdout
    try:
        return run()
    except click.exceptions.Exit as done:  # --help and friends
        return done.exit_code
    except click.ClickException as error:  # usage errors: unknown option, bad value, missing argument
        hint = f" (see `{error.ctx.command_path} --help`)" if isinstance(error, click.UsageError) and error.ctx else ""
        _error("UsageError", error.format_message() + hint, wants_json())
        return error.exit_code
    except ClusterPipelineError as error:
        _error(type(error).__name__, str(error), wants_json())
        return EXIT_ERROR
    except BrokenPipeError:  # `… | head` closed the pipe: the reader has what it wanted
        _silence_stdout()
        return 0
    except SystemExit as done:  # Click exits by itself when its help text meets a closed pipe
        return 0 if sys.stdout is not stdout else int(done.code or 0)
    except OSError as error:  # a file the user named cannot be read or written
        _error("OSError", f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), wants_json())
        return EXIT_ERROR
    except (KeyboardInterrupt, click.Abort):
        return EXIT_INTERRUPTED


def run(argv: Sequence[str] | None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command, return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings = Settings()

    def invoke() -> int:
        return int(cli.main(args=args, prog_name="cluster-pipeline", standalone_mode=False, obj=settings) or 0)

    code = _guarded(invoke, lambda: settings.json or "--json" in args)
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    return code
