"""Human names for the kinds of tracked work, shown by the editor panel and the tasks area.

Each feature room registers its kinds where it defines them (``register_kind``); an unknown
kind is shown by its code, so a row of a removed feature still reads.
"""

from __future__ import annotations

from django.utils.functional import Promise

LABELS: dict[str, str | Promise] = {}


def register_kind(kind: str, label: str | Promise) -> str:
    """Register a kind's label and return the kind, so that ``KIND_X = register_kind(...)``."""
    LABELS[kind] = label
    return kind


def label_for(kind: str) -> str:
    return str(LABELS.get(kind, kind))
