"""Find a model version's adapter: the entry point its manifest names.

A platform ships its adapter as its own Python package that declares, in its pyproject,

    [project.entry-points."tributary.model_adapters"]
    my-model = "my_platform.tributary_adapter:load"

and writes ``"adapter": "my-model"`` into each model version's ``model_version.json``. The
engine installs nothing and imports nothing of the platform's until a model version names it.
"""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from attribution.protocol import ADAPTER_FIELD, ENTRY_POINT_GROUP, ModelAdapter


class AdapterNotFound(LookupError):
    """The model version names no adapter, or one that no installed package provides."""


def available_adapters() -> dict[str, EntryPoint]:
    """Installed adapters by name."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def adapter_name(model_version_dir: Path) -> str:
    """The adapter named by a model version's model_version.json."""
    info_path = Path(model_version_dir) / "model_version.json"
    if not info_path.exists():
        raise AdapterNotFound(f"model version folder {model_version_dir} has no model_version.json")
    info = json.loads(info_path.read_text())
    name = info.get(ADAPTER_FIELD)
    if not isinstance(name, str) or not name:
        raise AdapterNotFound(
            f"model version {info.get('model_version', model_version_dir)}: model_version.json "
            f"names no {ADAPTER_FIELD!r}; the platform must name the entry point of its adapter "
            f"(group {ENTRY_POINT_GROUP!r})"
        )
    return name


def load_adapter(model_version_dir: Path, **options: Any) -> ModelAdapter:
    """The adapter of a model version, built by its entry point's factory."""
    name = adapter_name(model_version_dir)
    found = available_adapters()
    if name not in found:
        raise AdapterNotFound(
            f"no installed package provides adapter {name!r} (entry-point group "
            f"{ENTRY_POINT_GROUP!r}); installed: {sorted(found) or 'none'}"
        )
    factory = found[name].load()
    adapter = factory(Path(model_version_dir), **options)
    # What every method needs; the model-side methods (losses, modules, checkpoints) are
    # checked by the attributors that use them, so an outputs-only adapter (black-box
    # similarity) stays valid.
    missing = [m for m in ("prepare", "content_sha256") if not callable(getattr(adapter, m, None))]
    if missing:
        raise TypeError(f"adapter {name!r} lacks {missing} of the ModelAdapter protocol")
    return adapter
