"""Plugin discovery: entry points of group ``llmb_run.workloads``; broken plugins are recorded, not fatal."""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple

import pluggy

from llmb_plugin_deepseek_r1.host import hookspecs
from .contract import Workload
from .errors import HostError, ValidationError

ENTRY_POINT_GROUP = "llmb_run.workloads"


class BrokenPlugin(NamedTuple):
    """A plugin that failed to load or register, kept so that `list` and errors can name it."""

    name: str
    target: str
    error: str


@dataclass
class Registry:
    """Everything the host knows about installed workloads."""

    manager: pluggy.PluginManager
    workloads: dict[str, Workload] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    broken: list[BrokenPlugin] = field(default_factory=list)

    def get(self, key: str) -> Workload:
        """The workload called ``key``, or a ValidationError with close-match suggestions."""
        if key in self.workloads:
            return self.workloads[key]
        hint = ""
        import difflib  # only to suggest a name after a typo

        close = difflib.get_close_matches(key, list(self.workloads), n=3, cutoff=0.5)
        if close:
            hint = f"; did you mean {', '.join(close)}?"
        elif self.workloads:
            hint = f"; available: {', '.join(sorted(self.workloads))}"
        if self.broken:
            names = ", ".join(f"{b.name} ({b.error})" for b in self.broken)
            raise HostError(f"unknown workload {key!r}{hint}; plugins that failed to load: {names}")
        raise ValidationError(f"unknown workload {key!r}{hint}")


class EntryPoint(NamedTuple):
    """One ``name = module[:attr]`` line of a distribution's ``entry_points.txt``."""

    name: str
    value: str

    def load(self) -> Any:
        module, _, attr = self.value.partition(":")
        target = importlib.import_module(module.strip())
        for part in filter(None, attr.split("[")[0].strip().split(".")):
            target = getattr(target, part)
        return target


def _normalized(dist_dir: str) -> str:
    return dist_dir.rsplit(".", 1)[0].split("-")[0].lower().replace("_", "-").replace(".", "-")


def _group_lines(text: str, group: str) -> Iterable[tuple[str, str]]:
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


def _iter_entry_points(group: str = ENTRY_POINT_GROUP) -> Iterable[EntryPoint]:
    """The group's entry points of the distributions on ``sys.path``, first occurrence of a distribution first.

    What ``importlib.metadata.entry_points(group=...)`` returns, read straight from ``*.dist-info`` and
    ``*.egg-info`` folders: importing importlib.metadata (email, zipfile, csv...) is about a tenth of a dry run.
    """
    seen_dists: set[str] = set()
    seen: set[tuple[str, str]] = set()
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # missing folders, zip archives (which hold no installed distributions here)
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = _normalized(name)
            if dist in seen_dists:  # a distribution shadowed by an earlier path entry
                continue
            seen_dists.add(dist)
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            for ep_name, value in _group_lines(text, group):
                if (ep_name, value) in seen:  # editable installs can list a distribution twice
                    continue
                seen.add((ep_name, value))
                yield EntryPoint(ep_name, value)


def _registrar(registry: Registry, origin: str):
    def register(workload: Workload) -> None:
        if not isinstance(workload, Workload):
            raise TypeError(f"plugin {origin!r} registered {workload!r}, which does not derive from "
                            f"llmb_plugin_deepseek_r1.host.contract.Workload")
        key = workload.key
        if not isinstance(key, str) or not key:
            raise TypeError(f"plugin {origin!r} registered a workload without a key: {workload!r}")
        if workload.missing():
            raise TypeError(f"workload {key!r} of plugin {origin!r} does not implement {', '.join(workload.missing())}")
        if key in registry.workloads:
            raise ValueError(f"workload {key!r} registered twice ({registry.origins[key]} and {origin})")
        registry.workloads[key] = workload
        registry.origins[key] = origin

    return register


def load_registry(extra_plugins: Iterable[Any] = (), *, entry_points: bool = True) -> Registry:
    """Discover plugins and collect their workloads.

    ``extra_plugins`` (modules or objects with hook implementations) are registered first; tests use them the way
    simonw/llm's fixtures do.
    """
    manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    registry = Registry(manager=manager)
    candidates: list[tuple[str, str, Any]] = []
    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", repr(plugin))
        candidates.append((name, name, plugin))
    if entry_points:
        for ep in _iter_entry_points():
            try:
                candidates.append((ep.name, ep.value, ep.load()))
            except Exception as exc:  # a broken plugin must not take the host down
                registry.broken.append(BrokenPlugin(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
    for name, target, plugin in candidates:
        try:
            if manager.is_registered(plugin):
                continue
            manager.register(plugin, name=name)
            impls = [i for i in manager.hook.llmb_register_workloads.get_hookimpls() if i.plugin is plugin]
            for impl in impls:
                impl.function(register=_registrar(registry, name))
        except Exception as exc:
            if manager.is_registered(plugin):
                manager.unregister(plugin)
            registry.broken.append(BrokenPlugin(name, target, f"{type(exc).__name__}: {exc}"))
    return registry


_SHARED: Registry | None = None


def shared_registry() -> Registry:
    """The registry of this process, loaded once; plugins that failed to load are named on stderr once."""
    global _SHARED
    if _SHARED is None:
        _SHARED = load_registry()
        for broken in _SHARED.broken:
            print(f"warning: plugin {broken.name!r} ({broken.target}) failed to load: {broken.error}",
                  file=sys.stderr)
    return _SHARED
