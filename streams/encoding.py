"""Avro encoding for the topics trueup writes: Confluent wire format with a registry, single-object without."""

from __future__ import annotations

from streams import avro_codec


class Encoder:
    """Encodes records by schema name; the subject for the registry is `<topic>-value`."""

    def __init__(self, registry_url: str | None = None, schemas: avro_codec.SchemaSet | None = None) -> None:
        self.schemas = schemas or avro_codec.SchemaSet.load(avro_codec.AVRO_DIR)
        self.registry = None
        if registry_url:
            from streams.schema_registry import RegistryCodec

            self.registry = RegistryCodec(registry_url, self.schemas)

    def encode(self, topic: str, schema_name: str, record: dict) -> bytes:
        if self.registry is not None:
            return self.registry.encode(f"{topic}-value", schema_name, record)
        return avro_codec.encode_single_object(self.schemas, schema_name, record)

    def decode(self, data: bytes) -> tuple[str, dict]:
        lookup = self.registry.lookup if self.registry is not None else None
        return avro_codec.decode(data, self.schemas, registry_lookup=lookup)
