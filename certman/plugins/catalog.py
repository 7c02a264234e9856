"""What ``certman plugins`` shows: every registered plugin, where it comes from, and its settings."""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass

from ..errors import UsageError
from . import registry as plugins
from .settings import SettingInfo, describe


@dataclass(frozen=True)
class PluginInfo:
    kind: str
    name: str
    distribution: str
    summary: str
    settings: tuple[SettingInfo, ...]


def catalog(kinds: tuple[str, ...] = tuple(plugins.GROUPS)) -> list[PluginInfo]:
    """Every plugin of ``kinds``, loaded to read its docstring and settings dataclasses."""
    infos = []
    for kind in kinds:
        for _name, ref in sorted(plugins.available(kind).items()):
            infos.append(info(ref))
    return infos


def info(ref: plugins.PluginRef) -> PluginInfo:
    obj = ref.load()
    doc = inspect.getdoc(obj) or ""
    if isinstance(obj, type) and doc.startswith(f"{obj.__name__}("):
        doc = ""  # the signature dataclasses write when a class has no docstring
    # A plugin documents its settings by naming its dataclasses in ``settings_classes``;
    # a plugin that is itself a dataclass is its own settings.
    classes: tuple[type, ...] = getattr(obj, "settings_classes", None) or (
        (obj,) if isinstance(obj, type) and dataclasses.is_dataclass(obj) else ()
    )
    settings = tuple(s for cls in classes for s in describe(cls))
    return PluginInfo(
        kind=ref.kind,
        name=ref.name,
        distribution=ref.distribution,
        summary=doc.splitlines()[0] if doc else "",
        settings=settings,
    )


def find(name: str) -> list[PluginInfo]:
    """The plugins called ``name`` (a solver and a DNS provider may share one), for
    `certman plugins NAME`; ``UsageError`` when there is none."""
    found = [info(refs[name]) for kind in plugins.GROUPS if name in (refs := plugins.available(kind))]
    if not found:
        raise UsageError(f"no plugin named {name!r}", "run `certman plugins` to list them")
    return found
