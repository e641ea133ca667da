"""A search backend for tests: Wagtail's database backend, with index writes counted and a
switch that makes it fail as a search service that is down would."""

from __future__ import annotations

from typing import Any

from modelsearch.backends.database import SearchBackend as database_backend

WRITES: list[tuple[str, str]] = []  # (method, "model:pk,pk")
STATE = {"down": False}


class SearchServiceDown(ConnectionError):
    pass


def SearchBackend(params: dict[str, Any]) -> Any:  # noqa: N802 (modelsearch's naming)
    backend = database_backend(params)
    for method in ("add", "add_bulk", "delete"):
        original = getattr(backend, method)

        def wrapper(*args: Any, _method: str = method, _original: Any = original) -> Any:
            if STATE["down"]:
                raise SearchServiceDown("search service unavailable (connection refused)")
            objects = args[-1] if _method == "add_bulk" else [args[0]]
            WRITES.append((_method, ",".join(str(obj.pk) for obj in objects)))
            return _original(*args)

        setattr(backend, method, wrapper)
    return backend


def writes_for(pk: int) -> list[str]:
    return [method for method, pks in WRITES if str(pk) in pks.split(",")]
