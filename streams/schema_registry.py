"""Confluent Schema Registry adapter: registers trueup's schemas and fetches writer schemas by id, cached."""

from __future__ import annotations

import json
import threading
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from streams.avro_codec import AvroEncodeError, SchemaSet, decode, default_schemas, encode_confluent


class RegistryError(RuntimeError):
    """The schema registry refused or could not answer (unreachable, incompatible schema, unknown id)."""


def value_subject(topic: str) -> str:
    """The registry subject of a topic's values under Confluent's default TopicNameStrategy."""
    return f"{topic}-value"


class RegistryCodec:
    """Encodes records in the Confluent wire format under registered schemas and looks writer schemas up by id."""

    def __init__(
        self,
        url: str,
        schemas: SchemaSet | None = None,
        *,
        client: SchemaRegistryClient | None = None,
        conf: dict[str, Any] | None = None,
    ):
        self.url = url
        self.schemas = schemas if schemas is not None else default_schemas()
        self.client = client if client is not None else SchemaRegistryClient({"url": url, **(conf or {})})
        self._ids: dict[tuple[str, str], int] = {}
        self._writers: dict[int, dict] = {}
        self._lock = threading.Lock()

    def register(self, subject: str, schema_name: str) -> int:
        """Register the current schema (self-contained JSON) under subject once; returns its registry id."""
        key = (subject, schema_name)
        schema_id = self._ids.get(key)
        if schema_id is not None:
            return schema_id
        try:
            text = self.schemas.schema_json(schema_name)
        except KeyError as exc:
            raise AvroEncodeError(str(exc.args[0])) from None
        with self._lock:
            if key not in self._ids:
                try:
                    self._ids[key] = self.client.register_schema(subject, Schema(text, "AVRO"))
                except Exception as exc:
                    raise RegistryError(
                        f"{self.url}: registering {schema_name} under subject {subject!r} failed: {exc}"
                    ) from exc
            return self._ids[key]

    def encode(self, subject: str, schema_name: str, record: dict) -> bytes:
        """Confluent wire-format bytes of record under the current schema_name registered in subject."""
        schema_id = self.register(subject, schema_name)
        return encode_confluent(schema_id, self.schemas.parsed(schema_name), record)

    def lookup(self, schema_id: int) -> dict:
        """The writer schema registered under schema_id, as parsed JSON; pass as decode's registry_lookup."""
        cached = self._writers.get(schema_id)
        if cached is not None:
            return cached
        try:
            schema = self.client.get_schema(schema_id)
        except Exception as exc:
            raise RegistryError(f"{self.url}: fetching schema id {schema_id} failed: {exc}") from exc
        if (schema.schema_type or "AVRO") != "AVRO":
            raise RegistryError(f"{self.url}: schema id {schema_id} is {schema.schema_type}, not AVRO")
        if schema.references:
            raise RegistryError(
                f"{self.url}: schema id {schema_id} uses schema references; trueup reads self-contained schemas only"
            )
        try:
            parsed = json.loads(schema.schema_str)
        except (TypeError, ValueError) as exc:
            raise RegistryError(f"{self.url}: schema id {schema_id} is not JSON: {exc}") from exc
        self._writers[schema_id] = parsed
        return parsed

    def decode(self, data: bytes, reader: str | None = None) -> tuple[str, dict]:
        """Decode either wire format with this registry for Confluent ids: (full name, record)."""
        return decode(data, self.schemas, registry_lookup=self.lookup, reader=reader)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> RegistryCodec:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
