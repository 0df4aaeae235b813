"""One registry of typed rule classes, keyed by the ``type`` a model file gives.

Every kind of rule a model file can list — dimension rules, escalation rules, churn
signals, grade indicators — is a class with a ``type`` name, registered in the
registry of its kind.  Adding a rule is one class (decorated with ``@REG.register``)
and one ``type = "…"`` line in the model file; the loader builds it by name and a
model that names an unknown type fails at load, naming the file, the key and the
types on offer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

from tierctl.models.loader import Section

T = TypeVar("T")


class Registry(Generic[T]):
    """Classes of one kind of rule, by ``type`` name."""

    def __init__(self, kind: str, *, attr: str = "type", key: str = "type") -> None:
        self.kind = kind  # what the rules are called in messages, e.g. "升级规则"
        self.attr = attr  # the class attribute holding the type name
        self.key = key  # the model-file key naming the type
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        name = getattr(cls, self.attr, None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__name__} has no {self.attr!r} name to register under")
        if name in self._classes and self._classes[name] is not cls:
            raise TypeError(f"{self.kind}: type {name!r} registered twice "
                            f"({self._classes[name].__name__}, {cls.__name__})")
        self._classes[name] = cls
        return cls

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __getitem__(self, name: str) -> type[T]:
        return self._classes[name]

    def names(self) -> tuple[str, ...]:
        return tuple(self._classes)

    def lookup(self, sec: Section, default: str | None = None) -> type[T]:
        """The class a section's ``type`` key names; a clear model error otherwise."""
        name = sec.str(self.key, default) if default is not None else sec.str(self.key)
        cls = self._classes.get(name)
        if cls is None:
            raise sec.error(self.key, f"未知的{self.kind}类型「{name}」",
                            hint=f"可用：{', '.join(self._classes)}")
        return cls

    def build(self, sec: Section, *args: Any, default: str | None = None, **kw: Any) -> T:
        cls: Callable[..., T] = self.lookup(sec, default)
        return cls(sec, *args, **kw)
