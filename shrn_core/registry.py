"""A tiny name -> factory registry, one per stage, so backends are pluggable by name."""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, stage: str):
        self.stage = stage
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(factory: Callable[..., T]) -> Callable[..., T]:
            self._factories[name] = factory
            return factory

        return decorator

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str, **options) -> T:
        if name not in self._factories:
            raise InputError(f"unknown {self.stage} backend {name!r}; choose one of: {', '.join(self.names())}")
        return self._factories[name](**options)
