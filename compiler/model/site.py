"""Compile-time checks of the workflow's `site:` against what its steps stage.

A job finding out that its store is missing or its storage plugin absent would fail
every dataset one by one; the compile says it once, at the key to fix."""

from __future__ import annotations

from pathlib import Path

from compiler.core.diagnostics import fail, suggest
from compiler.load.workflow import RawWorkflow
from compiler.model.types import Site, Step


def checked_site(raw: RawWorkflow, site: Site, steps: tuple[Step, ...]) -> Site:
    reader = next((s for s in steps if s.inputs), None)  # inputs come from the store
    if reader and not site.store:
        raise fail(
            reader.loc,
            f"step '{reader.name}' declares inputs, but the workflow's site: names no store "
            "to stage them from",
        )
    if not site.store:
        return site
    m = raw.doc["site"]
    given = m["store"]
    url = "://" in site.store
    if url and site.shared_fs:
        raise fail(
            m.val_loc("store"),
            f"site store '{given}' is a URL: with shared_fs true it must be a directory",
        )
    if reader and not url and not Path(site.store).is_dir():
        what = "is not a directory" if Path(site.store).exists() else "does not exist"
        raise fail(
            m.val_loc("store"),
            f"site store '{given}' {what} (step '{reader.name}' stages its inputs from it)",
        )
    if not site.shared_fs:
        _check_plugin(raw, site, steps)
    return site


def _check_plugin(raw: RawWorkflow, site: Site, steps: tuple[Step, ...]) -> None:
    from snakemake_interface_storage_plugins.registry import StoragePluginRegistry

    m = raw.doc["site"]
    name = site.storage_provider
    loc = m.val_loc("storage_provider" if "storage_provider" in m else "shared_fs")
    registry = StoragePluginRegistry()
    if not registry.is_installed(name):
        raise fail(
            loc,
            f"storage_provider '{name}' is not an installed Snakemake storage plugin"
            f"{suggest(name, registry.get_registered_plugins())}: "
            f"pip install snakemake-storage-plugin-{name}",
        )
    plugin = registry.get_plugin(name)
    valid = plugin.storage_provider.is_valid_query(site.store)
    if not valid:
        raise fail(
            m.val_loc("store"),
            f"site store '{m['store']}' is not a valid query for storage plugin '{name}': "
            f"{valid.reason}",
        )
    writer = next((s for s in steps if s.outputs), None)
    if writer and not plugin.is_read_write():
        raise fail(
            loc,
            f"storage plugin '{name}' cannot store files, and step '{writer.name}' "
            "declares outputs to stage out",
        )
