"""The ``clusters`` group: configurations over their life (create, list, show, update, delete).

``create`` and ``update`` take options generated from the configuration model, so a field is declared
once: one per field with a plain value (its type, bounds, choices and description), a few nested fields
by a short name (``NESTED_OPTIONS``), shortcuts for the rest, ``--set FIELD=VALUE`` for any field by its
dotted path, and ``--config-file``. They become one ``ConfigurationChanges`` for the service.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import UnionType
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

import click

from cluster_pipeline.cli.app import Command, cli, current_service, current_settings, read_json_option
from cluster_pipeline.cli.output import table
from cluster_pipeline.core.errors import ConfigurationError

if TYPE_CHECKING:
    from cluster_pipeline.service import ConfigurationChanges

# nested fields with an option of their own, by its name (any other: --set PATH=VALUE)
NESTED_OPTIONS = {
    "reduction": "reduction.method",
    "normalize": "preprocessing.normalize",
    "on_change": "triggers.on_change",
    "schedule": "triggers.schedule",
}
# fields the store sets (ids, times, versions) or a shortcut does (--feature); collection and name: create only
NO_OPTION = ("cluster_id", "namespace", "created_at", "updated_at", "version", "feature")
CREATE_ONLY = ("collection", "name")
CHOICES_INLINE = 40  # longer lists of choices go in the help text, so `--help` fits 80 columns
OFF_SWITCHES = {"reassign_noise": "--keep-noise"}  # a flag's negative name, where it is not --no-NAME
SHORTCUTS = ("features", "weights", "filter_", "params", "pca", "settings", "config_file", "algorithm")


def _value_type(annotation: Any, metadata: list[Any]) -> Any:
    """The click type of a field that holds one plain value (``bool``: a flag); None for lists, objects, blocks."""
    union = get_origin(annotation) in (Union, UnionType)
    kinds = [kind for kind in get_args(annotation) if kind is not type(None)] if union else [annotation]
    if len(kinds) != 1:
        return None
    kind = kinds[0]
    if get_origin(kind) is Literal:
        return click.Choice([str(value) for value in get_args(kind)])
    bounds = {name: getattr(m, name) for m in metadata for name in ("ge", "gt", "le", "lt") if hasattr(m, name)}
    if kind in (int, float) and bounds:
        ranged = click.IntRange if kind is int else click.FloatRange
        low, high = bounds.get("ge", bounds.get("gt")), bounds.get("le", bounds.get("lt"))
        return ranged(min=low, max=high, min_open="gt" in bounds, max_open="lt" in bounds)
    return kind if kind in (bool, str, int, float) else None


def _option(model: Any, name: str, path: str) -> click.Option | None:
    """The option of ``model``'s field at ``path``; a nested field without a description is helped by the
    first line of its block's docstring."""
    *parents, last = path.split(".")
    for parent in parents:
        model = model.model_fields[parent].annotation
    info = model.model_fields[last]
    kind = _value_type(info.annotation, info.metadata)
    if kind is None:
        return None
    dashed = "--" + name.replace("_", "-")
    text = info.description or ((model.__doc__ or "").strip().splitlines()[0].replace("``", "") if parents else None)
    if kind is bool:
        return click.Option([f"{dashed}/{OFF_SWITCHES.get(name, '--no-' + dashed[2:])}", name], default=None, help=text)
    if kind is str and info.default is None and name not in CREATE_ONLY:
        text = f"{text or ''} ('' for none)".strip()
    metavar = None
    if isinstance(kind, click.Choice) and len("|".join(kind.choices)) > CHOICES_INLINE:
        metavar, text = name.upper(), f"{text or ''} One of: {', '.join(map(str, kind.choices))}.".strip()
    return click.Option([dashed, name], type=kind, help=text, metavar=metavar)


class ConfigurationCommand(Command):
    """``create`` and ``update``: the shortcuts, and the options generated from the model, made when first
    needed (to parse or show help), so ``--help`` and the other commands do not import the model (0.15 s)."""

    generated = False

    def __init__(self, *args: Any, params: list[click.Parameter], **kwargs: Any) -> None:
        shortcuts = [
            click.Option(["--feature", "features"], multiple=True,
                         help="Embedding column; repeat to cluster several features as one space."),
            click.Option(["--weights"], help="Comma-separated weight per feature, for --combine weighted."),
            click.Option(["--filter", "filter_"], metavar="JSON|@FILE",
                         help="Cluster only the documents this filter keeps (AND/OR/NOT over metadata); null: all."),
            click.Option(["--param", "params"], multiple=True, metavar="NAME=VALUE",
                         help="Estimator parameter (repeatable)."),
            click.Option(["--pca"], type=click.IntRange(min=0), help="Reduce to N dimensions by PCA first (0: none)."),
            click.Option(["--set", "settings"], multiple=True, metavar="FIELD=VALUE",
                         help="Any configuration field by its dotted path, e.g. checks.min_silhouette=0.1 (repeatable)."),
            click.Option(["--config-file"], type=click.Path(dir_okay=False), help="JSON file of configuration fields."),
        ]  # fmt: skip
        super().__init__(*args, params=[*params, *shortcuts], **kwargs)

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self.generated:
            from cluster_pipeline.core.config.model import ClusterConfig

            create = self.name == "create"
            top = [n for n in ClusterConfig.model_fields if n not in NO_OPTION and (create or n not in CREATE_ONLY)]
            options = (
                _option(ClusterConfig, name, path) for name, path in {**{n: n for n in top}, **NESTED_OPTIONS}.items()
            )
            self.params[:0] = [option for option in options if option is not None]
            self.generated = True
        return super().get_params(ctx)


def _pairs(pairs: Sequence[str], option: str, example: str) -> list[tuple[str, Any]]:
    parsed = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name:
            raise ConfigurationError(f"Bad {option} {pair!r}: write NAME=VALUE, e.g. {option} {example}.")
        try:
            parsed.append((name, json.loads(text)))
        except json.JSONDecodeError:
            parsed.append((name, text))
        except RecursionError:
            raise ConfigurationError(
                f"Bad {option} {name}=…: its JSON value nests too deeply to read; flatten it."
            ) from None
    return parsed


def _changes(options: dict[str, Any], unset: Sequence[str] = ()) -> ConfigurationChanges:
    """The command line's options as the service's ``ConfigurationChanges``."""
    from cluster_pipeline.service import ConfigurationChanges

    features = list(options["features"])
    settings: list[tuple[str, Any]] = []
    if features:
        settings += [("feature", features[0]), ("features", features if len(features) > 1 else None)]
    if options["weights"]:
        try:
            settings.append(("weights", [float(w) for w in options["weights"].split(",")]))
        except ValueError:
            raise ConfigurationError(f"Bad --weights {options['weights']!r}: write numbers like 0.7,0.3.") from None
    if options["filter_"] is not None:
        settings.append(("filters", read_json_option(options["filter_"], "--filter")))
    settings += [(f"parameters.{name}", value) for name, value in _pairs(options["params"], "--param", "n_clusters=8")]
    if options["pca"] is not None:
        settings.append(("reduction", {"method": "pca", "n_components": options["pca"]} if options["pca"] else
                         {"method": "none"}))  # fmt: skip
    settings += [
        (NESTED_OPTIONS.get(name, name), None if value == "" else value)
        for name, value in options.items()
        if name not in SHORTCUTS and value is not None
    ]
    settings += _pairs(options["settings"], "--set", "checks.min_silhouette=0.1")
    fields = {}
    if options["config_file"]:
        fields = read_json_option("@" + options["config_file"], f"--config-file {options['config_file']!r}")
        if not isinstance(fields, dict):
            raise ConfigurationError(
                f"--config-file {options['config_file']!r} must hold a JSON object of configuration fields."
            )
    return ConfigurationChanges(fields, options["algorithm"], settings, unset)


@cli.group()
def clusters() -> None:
    """Cluster configurations: create, list, show, update, delete."""


@clusters.command("create", cls=ConfigurationCommand)
def clusters_create(**options: Any) -> None:
    """Define a configuration (validated now: parameters, filter, cron, time zone, against the collection)."""
    config = current_service().configurations.create(_changes(options))
    current_settings().emit(
        config.model_dump(mode="json"),
        f"Created {config.display_name} ({config.cluster_id}: {config.algorithm} on "
        f"{config.namespace}/{config.collection}). Execute it with: cluster-pipeline execute {config.display_name}",
    )


@clusters.command("update", cls=ConfigurationCommand)
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--unset-param", "unset", multiple=True, metavar="NAME", help="Remove a parameter (repeatable).")
def clusters_update(configuration_name: str, unset: tuple[str, ...], **options: Any) -> None:
    """Change a configuration (its name or clust_ id; not its collection or name). A change to what
    executions compute makes a new version; description, triggers and checks keep it. Refused while an
    execution is in flight."""
    revision = current_service().configurations.update(configuration_name, _changes(options, unset))
    config = revision.config
    version = f"version {config.version}" if revision.new_version else f"still version {config.version}"
    current_settings().emit(
        {"configuration": config.model_dump(mode="json"), "changed": revision.changed,
         "new_version": revision.new_version},
        f"Updated {config.display_name} ({version}; changed: {', '.join(revision.changed)}). "
        "Executions from now on run it; earlier results keep the configuration they ran with.",
    )  # fmt: skip


@clusters.command("delete")
@click.argument("configuration_name", metavar="CONFIGURATION")
@click.option("--keep-history/--delete-history", default=True, show_default=True,
              help="Keep the configuration's ExecutionResults (readable with `executions`) or remove them.")  # fmt: skip
def clusters_delete(configuration_name: str, keep_history: bool) -> None:
    """Delete a configuration (its name or clust_ id) and its Dagster partition (refused while an execution
    is in flight). Its name is free again; its kept history is read by its clust_ id."""
    deletion = current_service().configurations.delete(configuration_name, keep_history=keep_history)
    cluster_id, count = deletion.config.cluster_id, deletion.executions
    history = (
        f"its {count} execution(s) stay readable with `cluster-pipeline executions list {cluster_id}`"
        if deletion.history_kept
        else f"its {count} execution(s) were removed"
    )
    current_settings().emit(
        {"deleted": cluster_id, "history": "kept" if deletion.history_kept else "deleted", "executions": count},
        f"Deleted {deletion.config.display_name} ({cluster_id}); {history}.",
    )


@clusters.command("list")
def clusters_list() -> None:
    """List the namespace's configurations (unreadable files are skipped with a warning)."""
    settings = current_settings()
    configs = current_service().configurations.list()
    rows = [
        (c.display_name, c.cluster_id, f"v{c.version}", c.algorithm, c.collection, json.dumps(c.parameters))
        for c in configs
    ]
    headers = ("name", "cluster_id", "ver", "algorithm", "collection", "parameters")
    shown = table(headers, rows, keep=("name", "cluster_id")) if configs else ""
    settings.emit(
        [c.model_dump(mode="json") for c in configs], shown or f"No configurations in namespace {settings.namespace!r}."
    )


@clusters.command("show")
@click.argument("configuration_name", metavar="CONFIGURATION")
def clusters_show(configuration_name: str) -> None:
    """Show one configuration (by its name or clust_ id)."""
    config = current_service().configurations.get(configuration_name)
    current_settings().emit(config.model_dump(mode="json"), config.model_dump_json(indent=2))
