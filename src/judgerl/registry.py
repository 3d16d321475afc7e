"""One registry class for every kind of component: name -> factory + its own settings + help.

Providers (judgerl.providers.PROVIDERS), ways of judging (judgerl.judges.JUDGES), algorithms
(judgerl.algorithms.RL_ALGORITHMS), kinds of policy (judgerl.policies.POLICIES) and tasks
(judgerl.tasks.TASKS) each have one `Registry`. Built-in components register exactly as a third
party's do:

    from pydantic import BaseModel, Field
    from judgerl.algorithms import RL_ALGORITHMS

    class MySettings(BaseModel):
        strength: float = Field(0.1, description="how hard to push")

    RL_ALGORITHMS.register("my_algorithm", MyAlgorithm, settings=MySettings, help="what it does")

and a config names it (`rl: {algorithm: my_algorithm, my_algorithm: {strength: 0.2}}`); the
config validates the name against the registry and the section against `MySettings`, and the
factory is called with the validated settings as keyword arguments, nothing else.

A plugin is a module that registers components when imported: list it in the config's
`plugins:` or advertise it as a Python entry point in the group `judgerl.plugins`.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterator, TypeVar

from pydantic import BaseModel, ConfigDict

Factory = TypeVar("Factory", bound=Callable[..., Any])

PLUGIN_GROUP = "judgerl.plugins"


class NoSettings(BaseModel):
    """A component without settings of its own: any setting given to it is refused."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class Entry(Generic[Factory]):
    name: str
    factory: Factory
    settings: type[BaseModel]
    """The pydantic model of the component's own settings (extra fields forbidden)."""
    help: str = ""


class UnknownName(LookupError):
    """A name no component is registered under; the message lists the known ones."""


class Registry(Generic[Factory]):
    """name -> `Entry`. Reads like a mapping of name -> factory (`REGISTRY[name](**settings)`)."""

    def __init__(self, what: str):
        self.what = what
        """What the names name, for messages: "rl.algorithm", "judge.provider", ..."""
        self._entries: dict[str, Entry[Factory]] = {}

    def register(self, name: str, factory: Factory, settings: type[BaseModel] | None = None, help: str = "") -> Factory:
        """Register (or replace) `name`; `settings` is the model of its own settings (none: it takes none)."""
        if not name.isidentifier():
            raise ValueError(f"{self.what} {name!r}: a registered name must be a Python identifier (letters, digits, _)")
        if settings is not None and settings.model_config.get("extra") != "forbid":
            # A misspelt setting must be refused, never silently dropped.
            settings = type(settings.__name__, (settings,), {"model_config": {**settings.model_config, "extra": "forbid"},
                                                            "__module__": settings.__module__})
        self._entries[name] = Entry(name, factory, settings or NoSettings, help)
        return factory

    def entry(self, name: str) -> Entry[Factory]:
        if name not in self._entries:
            raise UnknownName(self.unknown(name))
        return self._entries[name]

    def unknown(self, name: str) -> str:
        """The one-line refusal of an unknown name, with a did-you-mean."""
        close = difflib.get_close_matches(name, list(self._entries), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        return f"unknown {self.what} {name!r}; {hint}known: {', '.join(sorted(self._entries))}"

    def entries(self) -> list[Entry[Factory]]:
        return list(self._entries.values())

    def build(self, name: str, settings: BaseModel | dict[str, Any] | None = None) -> Any:
        """The component `name`, its factory called with its validated settings as keywords."""
        entry = self.entry(name)
        if not isinstance(settings, entry.settings):
            settings = entry.settings.model_validate(dict(settings or {}))
        return entry.factory(**settings.model_dump())

    # -- read as a mapping of name -> factory
    def __getitem__(self, name: str) -> Factory:
        return self.entry(name).factory

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def keys(self) -> list[str]:
        return list(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"


_loaded: set[str] = set()


def load_plugins(modules: list[str] | tuple[str, ...] = ()) -> None:
    """Import each plugin module (once), so that its registrations are visible; then the modules
    that installed packages advertise as entry points in the group `judgerl.plugins`."""
    from importlib.metadata import entry_points

    for module in modules:
        if module in _loaded:
            continue
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise PluginError(f"plugins: cannot import {module!r} ({exc}); is it on PYTHONPATH or installed?") from None
        _loaded.add(module)
    for point in entry_points(group=PLUGIN_GROUP):
        if f"entry-point:{point.value}" in _loaded:
            continue
        try:
            point.load()
        except ImportError as exc:
            raise PluginError(f"entry point {point.name!r} ({PLUGIN_GROUP}): cannot import {point.value!r} ({exc})") from None
        _loaded.add(f"entry-point:{point.value}")


class PluginError(ImportError):
    """A plugin module that cannot be imported."""
