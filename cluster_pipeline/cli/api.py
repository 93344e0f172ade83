"""The HTTP API from the command line: ``serve`` it, and manage its ``api-keys``."""

import os

import click

from cluster_pipeline.cli.app import cli, current_service, current_settings


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=int, help="uvicorn worker processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API (Mixpeek's clustering routes under /v1; docs at /docs) with uvicorn."""
    import uvicorn

    root = current_settings().root
    if root:
        os.environ["CLUSTER_PIPELINE_ROOT"] = root
    uvicorn.run("cluster_pipeline.api.app:app_from_environment", factory=True, host=host, port=port, workers=workers)


@cli.group("api-keys")
def api_keys() -> None:
    """Keys of the HTTP API (create, list, revoke): each holds namespaces, to read or to read and write."""


@api_keys.command("create")
@click.option("--read-only", is_flag=True, help="The key may read, not write.")
@click.option("--description", help="What the key is for.")
def api_keys_create(read_only: bool, description: str | None) -> None:
    """A new key for --namespace (repeat the command's --namespace for another key); printed once."""
    settings = current_settings()
    key, record = current_service().api_keys.create({settings.namespace: "read" if read_only else "write"}, description)
    settings.emit(
        {"api_key": key, **record.public()},
        f"{key}\n  key id {record.key_id}, {'read' if read_only else 'read-write'} on {settings.namespace}; "
        "shown once: store it now.",
    )


@api_keys.command("list")
def api_keys_list() -> None:
    """Every key's id, namespaces and rights (never the key itself)."""
    keys = [k.public() for k in current_service().api_keys.load().keys.values()]
    lines = [
        f"{k['key_id']}  {', '.join(f'{ns}:{right}' for ns, right in k['grants'].items())}  "  # type: ignore[union-attr]
        f"created {k['created_at']}" + (f"  revoked {k['revoked_at']}" if k["revoked_at"] else "")
        for k in keys
    ]
    current_settings().emit(
        keys, "\n".join(lines) or "No API keys; create one with `cluster-pipeline api-keys create`."
    )


@api_keys.command("revoke")
@click.argument("key_id")
def api_keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (the 8 characters after sk_): it answers 401 from then on."""
    record = current_service().api_keys.revoke(key_id)
    current_settings().emit(record.public(), f"Revoked {record.key_id}.")
