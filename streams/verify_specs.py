"""Which source table holds each entity type, among the enabled sources: what verification compares."""

from __future__ import annotations

from streams.mapping import Mapping, TableMapping
from trueup.settings import Settings


def entity_specs(settings: Settings, mapping: Mapping) -> dict[str, tuple[str, str, TableMapping]]:
    """{entity type: (source name, table, its mapping)}, the first enabled source that maps it winning."""
    out: dict[str, tuple[str, str, TableMapping]] = {}
    for source in settings.enabled_sources:
        for table, spec in mapping.sources[source].tables.items():
            out.setdefault(spec.entity, (source, table, spec))
    return out
