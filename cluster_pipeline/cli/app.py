"""The command group and what every command shares: ``--namespace``, ``--root`` and ``--json``
declared once and accepted before or after the command, one-line errors (JSON under ``--json``),
exit statuses, and a reader that closes the pipe early (``… | head``) taken in stride."""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cluster_pipeline.core.errors import ClusterPipelineError, ConfigurationError

if TYPE_CHECKING:
    from cluster_pipeline.service import Service

EXIT_ERROR = 2
EXIT_FAILED_EXECUTION = 1
EXIT_INTERRUPTED = 130
EXIT_TIMEOUT = 124  # as GNU timeout: `executions wait --timeout` gave up
COMMON_OPTIONS_HELP = "--namespace, --root and --json may be given before or after the command."
NAMESPACE_HELP = "Namespace to work in (default: default)."
ROOT_HELP = "Data folder (default: $CLUSTER_PIPELINE_ROOT or ./.cluster_data)."
JSON_HELP = "Print JSON (errors too, on stderr)."


@dataclass
class Settings:
    """The shared options, from wherever on the command line they were given (the last one wins)."""

    namespace: str = "default"
    root: str | None = None
    json: bool = False

    def emit(self, data: Any, text: str) -> None:
        try:
            click.echo(json.dumps(data, indent=2, default=str) if self.json else text)
        except BrokenPipeError:  # `… | head` has read what it wanted: the command still succeeded
            _silence_stdout()


def _silence_stdout() -> None:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def current_settings() -> Settings:
    return click.get_current_context().find_root().ensure_object(Settings)


def _remember(name: str, ctx: click.Context, _param: click.Parameter, value: Any) -> None:
    if value is None or value is False:  # not given here: keep what an earlier position said
        return
    if name == "root":
        value = str(Path(value).expanduser().resolve())
        os.environ["CLUSTER_PIPELINE_ROOT"] = value  # the Dagster instance lives in the data root too
    setattr(ctx.find_root().ensure_object(Settings), name, value)


class _SharedOptions:
    """``--namespace``, ``--root``, ``--json`` on every group and command, each setting ``Settings``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, epilog=COMMON_OPTIONS_HELP, **kwargs)
        shared: dict[str, Any] = {"expose_value": False, "is_eager": True, "default": None}
        self.params += [
            click.Option(["--namespace"], callback=partial(_remember, "namespace"), help=NAMESPACE_HELP, **shared),
            click.Option(["--root"], callback=partial(_remember, "root"), metavar="DIR", help=ROOT_HELP, **shared),
            click.Option(
                ["--json", "json_"], is_flag=True, callback=partial(_remember, "json"), help=JSON_HELP, **shared
            ),
        ]


class Command(_SharedOptions, click.Command):
    pass


class Group(_SharedOptions, click.Group):
    command_class = Command
    group_class = type  # its groups are Groups too


def current_service() -> Service:
    """The application service in the namespace and data root given, closed (with the Dagster instance,
    if a call opened one) when the command ends."""
    from cluster_pipeline.service import Service

    settings = current_settings()
    return click.get_current_context().with_resource(
        Service.from_environment(settings.root, settings.namespace, on_warning=warn)
    )


def timestamp_option(_ctx: click.Context, _param: click.Parameter, text: str | None) -> datetime | None:
    """An ISO 8601 option as an aware datetime (UTC unless it names its zone)."""
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
    except RecursionError:
        raise ConfigurationError(f"{option} nests too deeply to read; flatten it.") from None


def warn(message: str) -> None:
    click.echo(json.dumps({"warning": message}) if current_settings().json else f"warning: {message}", err=True)


def print_error(kind: str, message: str | None, as_json: bool, **details: Any) -> None:
    """One line on stderr: ``error: MESSAGE``, or under ``--json`` a JSON object."""
    error = {"type": kind, "message": message, **details}
    click.echo(json.dumps({"error": error}) if as_json else f"error: {message}", err=True)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Cluster document collections by their embeddings, through Dagster."""


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: run the command line ``argv`` (default: the process's arguments) and return
    its exit status, whatever the command ended with."""
    args = list(sys.argv[1:] if argv is None else argv)
    settings, stdout, json_in_args = Settings(), sys.stdout, "--json" in args
    try:
        code = int(cli.main(args=args, prog_name="cluster-pipeline", standalone_mode=False, obj=settings) or 0)
    except click.ClickException as error:  # usage errors: unknown option, bad value, missing argument
        hint = f" (see `{error.ctx.command_path} --help`)" if isinstance(error, click.UsageError) and error.ctx else ""
        print_error("UsageError", error.format_message() + hint, json_in_args)
        code = error.exit_code
    except ClusterPipelineError as error:
        print_error(type(error).__name__, str(error), json_in_args)
        code = EXIT_ERROR
    except SystemExit as done:  # Click exits by itself when `… | head` closes the pipe: the reader has what it wanted
        code = 0 if sys.stdout is not stdout else int(done.code or 0)
    except OSError as error:  # a file the user named cannot be read or written
        print_error("OSError", f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), json_in_args)
        code = EXIT_ERROR
    except (KeyboardInterrupt, click.Abort):
        code = EXIT_INTERRUPTED
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    if argv is None:  # the process's own command line: it exits next, and need not collect what it leaves
        # Python's shutdown runs the cycle collector over every object the imports made (Dagster, pandas,
        # scipy...): ~0.3-0.5 s of an `execute`. Frozen objects are skipped; the process frees them all anyway.
        gc.freeze()
    return code
