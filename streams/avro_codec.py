"""Avro codec for trueup's contracts in avro/: single-object and Confluent wire formats, exact money."""

from __future__ import annotations

import io
import json
import random
import re
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint as _fastavro_fingerprint
from fastavro.schema import load_schema, parse_schema, to_parsing_canonical_form
from fastavro.utils import generate_many

AVRO_DIR = Path(__file__).resolve().parent.parent / "avro"
RELEASED_DIRNAME = "released"

SINGLE_OBJECT_MARKER = b"\xc3\x01"
CONFLUENT_MAGIC = 0
_SINGLE_OBJECT_HEADER = len(SINGLE_OBJECT_MARKER) + 8
_CONFLUENT_HEADER = 5

CANONICAL_EVENT = "trueup.events.CanonicalEvent"
DEAD_LETTER = "trueup.DeadLetter"
ALERT = "trueup.alerts.Alert"
MONEY = "trueup.Money"
ENTITY_RECORDS = {
    "account": "trueup.entities.Account",
    "opportunity": "trueup.entities.Opportunity",
    "billing_customer": "trueup.entities.BillingCustomer",
    "subscription": "trueup.entities.Subscription",
    "invoice": "trueup.entities.Invoice",
    "payment": "trueup.entities.Payment",
    "erp_customer": "trueup.entities.ErpCustomer",
    "sales_order": "trueup.entities.SalesOrder",
    "ar_posting": "trueup.entities.ArPosting",
}

RegistryLookup = Callable[[int], dict]


class AvroSchemaError(Exception):
    """A schema file in avro/ is invalid, misnamed or references an unknown type."""


class AvroEncodeError(ValueError):
    """A record does not fit its schema (bad money, missing or unknown field, wrong type)."""


class AvroDecodeError(ValueError):
    """Bytes are not a decodable trueup Avro message (marker, schema, body)."""


# ---------------------------------------------------------------------------
# Schemas


class SchemaSet:
    """Parsed schemas of one directory by full name, plus writer schemas of every released version."""

    def __init__(self, directory: Path, parsed: dict[str, dict], released: dict[str, SchemaSet]):
        self.directory = directory
        self._parsed = parsed
        self._fingerprints = {name: _fingerprint_of(schema) for name, schema in parsed.items()}
        self._json: dict[str, str] = {}
        self.released = released
        self._writers: dict[bytes, dict] = {}
        for version in released.values():
            for name in version.names():
                self._writers[version.fingerprint(name)] = version.parsed(name)
        for name, schema in parsed.items():
            self._writers[self._fingerprints[name]] = schema

    @classmethod
    def load(cls, directory: Path | str = AVRO_DIR, *, include_released: bool = True) -> SchemaSet:
        """Parse every *.avsc directly in directory (file name = full name) and, optionally, released/v*/."""
        directory = Path(directory)
        if not directory.is_dir():
            raise AvroSchemaError(f"{directory}: schema directory not found")
        parsed: dict[str, dict] = {}
        for path in sorted(directory.glob("*.avsc")):
            schema = _load_file(path)
            parsed[schema["name"]] = schema
        if not parsed:
            raise AvroSchemaError(f"{directory}: no *.avsc schema files")
        released: dict[str, SchemaSet] = {}
        if include_released:
            for version_dir in released_versions(directory):
                released[version_dir.name] = cls.load(version_dir, include_released=False)
        return cls(directory, parsed, released)

    def names(self) -> list[str]:
        """Full names of the current named types, sorted."""
        return sorted(self._parsed)

    def __contains__(self, name: object) -> bool:
        return name in self._parsed

    def parsed(self, name: str) -> dict:
        """The fastavro-parsed current schema of a full name, named references resolved."""
        try:
            return self._parsed[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r} in {self.directory}") from None

    def fingerprint(self, name: str) -> bytes:
        """CRC-64-AVRO of the schema's Parsing Canonical Form: 8 bytes, little-endian as on the wire."""
        self.parsed(name)
        return self._fingerprints[name]

    def by_fingerprint(self, fingerprint: bytes) -> dict | None:
        """The parsed writer schema (current or any released version) with this fingerprint, or None."""
        return self._writers.get(bytes(fingerprint))

    def parse(self, schema: dict | list | str) -> Any:
        """Parse a schema document whose named-type references resolve against this set's types."""
        named: dict[str, Any] = {}
        for parsed in self._parsed.values():
            named.update(_named(parsed) or {parsed["name"]: parsed})
        try:
            return parse_schema(schema, named_schemas=named)
        except Exception as exc:
            raise AvroSchemaError(f"{type(exc).__name__}: {exc}") from exc

    def schema_json(self, name: str) -> str:
        """The schema as one self-contained JSON document (each named type defined once), e.g. for a registry."""
        if name not in self._json:
            path = self.directory / f"{self.parsed(name)['name']}.avsc"
            self._json[name] = json.dumps(load_schema(str(path), _write_hint=False), separators=(",", ":"))
        return self._json[name]


def released_versions(directory: Path | str = AVRO_DIR) -> list[Path]:
    """The released/v<N> directories under a schema directory, oldest first."""
    root = Path(directory) / RELEASED_DIRNAME
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"v\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[1:]))


@lru_cache(maxsize=1)
def default_schemas() -> SchemaSet:
    """The repository's avro/ schemas with every released version, loaded once per process."""
    return SchemaSet.load(AVRO_DIR)


def _load_file(path: Path) -> dict:
    try:
        schema = load_schema(str(path))
    except Exception as exc:  # fastavro raises several unrelated types for bad schemas
        raise AvroSchemaError(f"{path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(schema, dict) or "name" not in schema:
        raise AvroSchemaError(f"{path}: top level must be a named type (record, enum or fixed)")
    if schema["name"] != path.name[: -len(".avsc")]:
        raise AvroSchemaError(f"{path}: defines {schema['name']!r}; the file must be named {schema['name']}.avsc")
    return schema


def _fingerprint_of(parsed: dict) -> bytes:
    return bytes.fromhex(_fastavro_fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


def _ensure_parsed(schema: dict | list | str) -> Any:
    if isinstance(schema, dict) and "__fastavro_parsed" in schema:
        return schema
    return parse_schema(schema)


def _named(parsed: Any) -> dict:
    if isinstance(parsed, dict):
        return parsed.get("__named_schemas", {})
    return {}


# ---------------------------------------------------------------------------
# Money guard: exact Decimals only, never rounded, never floats


_Guard = Callable[[Any], Any]
_guards: dict[int, tuple[Any, _Guard | None]] = {}


def _guard_for(parsed: Any) -> _Guard | None:
    entry = _guards.get(id(parsed))
    if entry is None or entry[0] is not parsed:
        if len(_guards) > 256:
            _guards.clear()
        entry = (parsed, _compile_guard(parsed, _named(parsed), {}))
        _guards[id(parsed)] = entry
    return entry[1]


def _compile_guard(schema: Any, named: dict, memo: dict) -> _Guard | None:
    """A checker that validates (and normalises) every decimal under schema, or None when there is none."""
    if isinstance(schema, str):
        if schema not in named:
            return None
        if schema not in memo:
            memo[schema] = None  # recursive types: the inner reference is not checked again
            memo[schema] = _compile_guard(named[schema], named, memo)
        return memo[schema]
    if isinstance(schema, list):
        return _union_guard(schema, named, memo)
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if schema.get("logicalType") == "decimal" and kind in ("bytes", "fixed"):
        return _decimal_guard(int(schema["precision"]), int(schema.get("scale", 0)))
    if kind in ("record", "error"):
        name = schema.get("name")
        if name in memo:
            return memo[name]
        memo[name] = None
        fields = [(f["name"], g) for f in schema["fields"] if (g := _compile_guard(f["type"], named, memo))]
        memo[name] = _record_guard(fields) if fields else None
        return memo[name]
    if kind == "array":
        items = _compile_guard(schema["items"], named, memo)
        return _array_guard(items) if items else None
    if kind == "map":
        values = _compile_guard(schema["values"], named, memo)
        return _map_guard(values) if values else None
    if isinstance(kind, (dict, list)) or kind in named:
        return _compile_guard(kind, named, memo)
    return None


class _Refused(Exception):
    """A guard's refusal; the path is collected on the way out, so values that pass build no path strings."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.where: list[str] = []  # innermost segment first

    def error(self) -> AvroEncodeError:
        path = "".join(reversed(self.where)).lstrip(".")
        return AvroEncodeError(f"{path}: {self.reason}")


def _decimal_guard(precision: int, scale: int) -> _Guard:
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)

    def check(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return value  # already the unscaled two's-complement form
        if not isinstance(value, Decimal):
            raise _Refused(
                f"money must be a Decimal, got {type(value).__name__} {value!r} (floats are never accepted)"
            )
        if not value.is_finite():
            raise _Refused(f"{value} is not a finite amount")
        if value.as_tuple().exponent < -scale:
            try:
                exact = value.quantize(quantum)
            except InvalidOperation:
                exact = None
            if exact is None or exact != value:
                raise _Refused(f"{value} has more than {scale} decimal places; round it explicitly before encoding")
            value = exact
        if abs(value) >= limit:
            raise _Refused(f"{value} does not fit decimal({precision},{scale}) (|amount| must be < {limit})")
        return value

    return check


def _record_guard(fields: list[tuple[str, _Guard]]) -> _Guard:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # not this record: fastavro reports the type error
        out = value
        for name, guard in fields:
            if name in value:
                old = value[name]
                try:
                    new = guard(old)
                except _Refused as exc:
                    exc.where.append(f".{name}")
                    raise
                if new is not old:
                    if out is value:
                        out = dict(value)
                    out[name] = new
        return out

    return check


def _array_guard(items: _Guard) -> _Guard:
    def check(value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            return value
        new = []
        for i, v in enumerate(value):
            try:
                new.append(items(v))
            except _Refused as exc:
                exc.where.append(f"[{i}]")
                raise
        return value if all(a is b for a, b in zip(new, value)) else new

    return check


def _map_guard(values: _Guard) -> _Guard:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        new = {}
        for k, v in value.items():
            try:
                new[k] = values(v)
            except _Refused as exc:
                exc.where.append(f"[{k!r}]")
                raise
        return value if all(new[k] is value[k] for k in value) else new

    return check


def _branch_name(schema: Any) -> str:
    if isinstance(schema, str):
        return schema
    if isinstance(schema, dict):
        return schema.get("name") or schema.get("type")
    return "union"


def _union_guard(branches: list, named: dict, memo: dict) -> _Guard | None:
    compiled = [(_branch_name(b), _compile_guard(b, named, memo)) for b in branches]
    guarded = [(name, g) for name, g in compiled if g]
    if not guarded:
        return None
    unguarded_non_null = any(g is None and name != "null" for name, g in compiled)
    by_name = dict(guarded)

    def check(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            guard = by_name.get(value[0])  # fastavro's tuple notation names the branch
            return value if guard is None else (value[0], guard(value[1]))
        first: _Refused | None = None
        for _, guard in guarded:
            try:
                return guard(value)
            except _Refused as exc:
                first = first or exc
        if unguarded_non_null:
            return value  # another branch may take it: fastavro decides
        raise first  # type: ignore[misc]

    return check


# ---------------------------------------------------------------------------
# Encoding


def _prepare(parsed: Any, record: Any) -> Any:
    """Exact-money check, and CanonicalEvent's before/after tagged with their entity record by entity_type."""
    if isinstance(parsed, dict) and parsed.get("name") == CANONICAL_EVENT and isinstance(record, dict):
        branch = ENTITY_RECORDS.get(record.get("entity_type"))
        if branch is not None:
            tagged = {
                field: (branch, record[field])
                for field in ("before", "after")
                if isinstance(record.get(field), dict)
            }
            if tagged:
                record = {**record, **tagged}
    guard = _guard_for(parsed)
    if guard is None:
        return record
    try:
        return guard(record)
    except _Refused as exc:
        raise exc.error() from None


def _body(parsed: Any, record: Any, what: str) -> bytes:
    record = _prepare(parsed, record)
    out = io.BytesIO()
    try:
        schemaless_writer(out, parsed, record, strict_allow_default=True)
    except AvroEncodeError:
        raise
    except Exception as exc:  # fastavro raises ValueError/TypeError/OverflowError/... for bad records
        raise AvroEncodeError(f"{what}: {type(exc).__name__}: {exc}") from exc
    return out.getvalue()


def encode_single_object(schemas: SchemaSet, name: str, record: dict) -> bytes:
    """Avro single-object encoding: C3 01, the schema's 8-byte CRC-64-AVRO fingerprint, then the body."""
    try:
        parsed = schemas.parsed(name)
    except KeyError as exc:
        raise AvroEncodeError(str(exc.args[0])) from None
    return SINGLE_OBJECT_MARKER + schemas.fingerprint(name) + _body(parsed, record, name)


def encode_confluent(schema_id: int, parsed_schema: dict, record: dict) -> bytes:
    """Confluent wire format: 0x00, the registry's 4-byte big-endian schema id, then the body."""
    if not 0 <= schema_id < 2**32:
        raise AvroEncodeError(f"schema id {schema_id} does not fit the 4-byte Confluent header")
    try:
        parsed = _ensure_parsed(parsed_schema)  # pass a parsed schema: parsing on every call is slow
    except Exception as exc:
        raise AvroEncodeError(f"schema id {schema_id}: not a valid Avro schema: {exc}") from exc
    name = parsed.get("name", "schema") if isinstance(parsed, dict) else "schema"
    return bytes([CONFLUENT_MAGIC]) + schema_id.to_bytes(4, "big") + _body(parsed, record, f"{name} (id {schema_id})")


# ---------------------------------------------------------------------------
# Decoding


_confluent_writers: dict[tuple[Any, int], tuple[dict, bytes]] = {}


def _confluent_writer(registry_lookup: RegistryLookup, schema_id: int) -> tuple[dict, bytes]:
    try:
        key: tuple[Any, int] | None = (registry_lookup, schema_id)
        cached = _confluent_writers.get(key)  # type: ignore[arg-type]
    except TypeError:  # an unhashable lookup callable: no caching
        key, cached = None, None
    if cached is None:
        try:
            raw = registry_lookup(schema_id)
        except Exception as exc:
            raise AvroDecodeError(
                f"Confluent schema id {schema_id}: registry lookup failed: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            parsed = parse_schema(raw)
        except Exception as exc:
            raise AvroDecodeError(f"Confluent schema id {schema_id}: not a valid Avro schema: {exc}") from exc
        if not isinstance(parsed, dict) or "name" not in parsed:
            raise AvroDecodeError(f"Confluent schema id {schema_id}: top level is not a named record")
        cached = (parsed, _fingerprint_of(parsed))
        if key is not None:
            if len(_confluent_writers) > 1024:
                _confluent_writers.clear()
            _confluent_writers[key] = cached
    return cached


def decode(
    data: bytes,
    schemas: SchemaSet,
    registry_lookup: RegistryLookup | None = None,
    reader: str | None = None,
) -> tuple[str, dict]:
    """Decode a single-object or Confluent message into the current schema: (full name, record)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise AvroDecodeError(f"expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if not data:
        raise AvroDecodeError("empty message: no Avro marker")
    if data[:2] == SINGLE_OBJECT_MARKER:
        if len(data) < _SINGLE_OBJECT_HEADER:
            raise AvroDecodeError(
                f"truncated single-object header: {len(data)} bytes, need {_SINGLE_OBJECT_HEADER}"
            )
        fp = data[2:_SINGLE_OBJECT_HEADER]
        writer = schemas.by_fingerprint(fp)
        if writer is None:
            raise AvroDecodeError(
                f"unknown schema fingerprint {fp.hex()}: not a current or released schema in {schemas.directory}"
            )
        writer_fp, offset, origin = fp, _SINGLE_OBJECT_HEADER, f"fingerprint {fp.hex()}"
    elif data[0] == CONFLUENT_MAGIC:
        if len(data) < _CONFLUENT_HEADER:
            raise AvroDecodeError(f"truncated Confluent header: {len(data)} bytes, need {_CONFLUENT_HEADER}")
        schema_id = int.from_bytes(data[1:_CONFLUENT_HEADER], "big")
        if registry_lookup is None:
            raise AvroDecodeError(f"Confluent wire format (schema id {schema_id}) but no schema registry configured")
        writer, writer_fp = _confluent_writer(registry_lookup, schema_id)
        offset, origin = _CONFLUENT_HEADER, f"schema id {schema_id}"
    else:
        raise AvroDecodeError(
            f"unknown encoding marker {data[:2].hex()}: expected c301 (Avro single-object) "
            "or 00 (Confluent wire format)"
        )

    name = reader or writer["name"]
    if name not in schemas:
        raise AvroDecodeError(f"{origin}: writer schema {writer['name']!r} has no current reader schema {name!r}")
    reader_schema = schemas.parsed(name)
    same = writer_fp == schemas.fingerprint(name)
    body = io.BytesIO(data)
    body.seek(offset)
    try:
        record = schemaless_reader(body, writer, None if same else reader_schema)
    except Exception as exc:  # truncated/garbage bodies raise EOFError, IndexError, UnicodeDecodeError, ...
        detail = str(exc) or ("data ended early" if isinstance(exc, EOFError) else "")
        raise AvroDecodeError(
            f"{origin} ({writer['name']} -> {name}): undecodable body: {type(exc).__name__}: {detail}"
        ) from exc
    if body.tell() != len(data):
        raise AvroDecodeError(
            f"{origin} ({writer['name']}): {len(data) - body.tell()} unexpected bytes after the record"
        )
    return name, record


# ---------------------------------------------------------------------------
# Compatibility


def check_backward_compatible(
    writer_schema: dict, reader_schema: dict, samples: int = 50, *, seed: int | None = 0
) -> list[str]:
    """Problems reading writer_schema's data with reader_schema (rules of Avro resolution + sample round trips)."""
    try:
        writer = _ensure_parsed(writer_schema)
        reader = _ensure_parsed(reader_schema)
    except Exception as exc:
        return [f"schema does not parse: {type(exc).__name__}: {exc}"]
    problems: list[str] = []
    _Resolver(_named(writer), _named(reader), problems).resolve(writer, reader, _label(writer))
    for index, record in enumerate(_samples(writer, samples, seed)):
        out = io.BytesIO()
        try:
            schemaless_writer(out, writer, record)
        except Exception:
            continue  # fastavro's generator can make data its writer rejects: not a compatibility problem
        out.seek(0)
        try:
            schemaless_reader(out, writer, reader)
        except Exception as exc:
            message = f"sample {index}: {type(exc).__name__}: {exc}"
            if len(message) > 300:
                message = message[:300] + "..."
            problems.append(message)
            break  # one failing sample is enough; the structural problems say where
    return problems


def _samples(writer: Any, count: int, seed: int | None) -> Iterator[Any]:
    state = random.getstate()
    try:
        if seed is not None:
            random.seed(seed)
        items = list(generate_many(writer, count))
    finally:
        random.setstate(state)
    return iter(items)


def _label(schema: Any) -> str:
    return schema.get("name", "schema") if isinstance(schema, dict) else "schema"


_PRIMITIVES = {"null", "boolean", "int", "long", "float", "double", "bytes", "string"}
_PROMOTIONS = {
    ("int", "long"), ("int", "float"), ("int", "double"),
    ("long", "float"), ("long", "double"), ("float", "double"),
    ("string", "bytes"), ("bytes", "string"),
}


class _Resolver:
    """Walks a writer and a reader schema by the Avro spec's resolution rules, collecting what cannot resolve."""

    def __init__(self, writer_named: dict, reader_named: dict, problems: list[str]):
        self.wn = writer_named
        self.rn = reader_named
        self.problems = problems
        self.seen: set[tuple[str, str]] = set()

    @staticmethod
    def _deref(schema: Any, named: dict) -> Any:
        for _ in range(100):
            if isinstance(schema, str) and schema in named:
                schema = named[schema]
            elif isinstance(schema, dict) and isinstance(schema.get("type"), (dict, list)):
                schema = schema["type"]
            elif isinstance(schema, dict) and isinstance(schema.get("type"), str) and schema["type"] in named:
                schema = named[schema["type"]]
            else:
                return schema
        return schema

    @staticmethod
    def _kind(schema: Any) -> str:
        if isinstance(schema, list):
            return "union"
        if isinstance(schema, dict):
            return schema["type"]
        return schema

    @staticmethod
    def _describe(schema: Any) -> str:
        if isinstance(schema, list):
            return "[" + ", ".join(_Resolver._describe(s) for s in schema) + "]"
        if isinstance(schema, dict):
            if "name" in schema:
                return schema["name"]
            logical = schema.get("logicalType")
            kind = schema["type"]
            return f"{kind}({logical})" if logical else str(kind)
        return str(schema)

    def _matches(self, w: Any, r: Any) -> bool:
        wk, rk = self._kind(w), self._kind(r)
        if wk in ("record", "error", "enum", "fixed"):
            if wk != rk:
                return False
            if wk == "fixed" and w.get("size") != r.get("size"):
                return False
            w_short = w["name"].split(".")[-1]
            aliases = r.get("aliases", [])
            return w_short == r["name"].split(".")[-1] or w["name"] in aliases or w_short in aliases
        if wk in ("array", "map"):
            return wk == rk
        return wk == rk or (wk, rk) in _PROMOTIONS

    def _problem(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def resolve(self, w: Any, r: Any, path: str) -> None:
        w, r = self._deref(w, self.wn), self._deref(r, self.rn)
        wk, rk = self._kind(w), self._kind(r)
        if wk == "union":
            for branch in w:
                self.resolve(branch, r, f"{path}<{self._describe(self._deref(branch, self.wn))}>")
            return
        if rk == "union":
            for branch in r:
                target = self._deref(branch, self.rn)
                if self._matches(w, target):
                    self.resolve(w, target, path)
                    return
            self._problem(path, f"writer type {self._describe(w)} matches no branch of reader {self._describe(r)}")
            return
        if not self._matches(w, r):
            self._problem(path, f"writer type {self._describe(w)} cannot be read as {self._describe(r)}")
            return
        if wk in ("record", "error", "enum", "fixed"):
            key = (w["name"], r["name"])
            if key in self.seen:
                return
            self.seen.add(key)
        if wk in ("record", "error"):
            self._record(w, r, path)
        elif wk == "enum":
            missing = [s for s in w["symbols"] if s not in r["symbols"]]
            if missing and "default" not in r:
                self._problem(path, f"enum symbols {missing} are not in the reader and it has no default")
        elif wk == "array":
            self.resolve(w["items"], r["items"], f"{path}[]")
        elif wk == "map":
            self.resolve(w["values"], r["values"], f"{path}{{}}")
        else:
            self._logical(w, r, path)

    def _record(self, w: dict, r: dict, path: str) -> None:
        writer_fields = {f["name"]: f for f in w["fields"]}
        for field in r["fields"]:
            names = [field["name"], *field.get("aliases", [])]
            source = next((writer_fields[n] for n in names if n in writer_fields), None)
            sub = f"{path}.{field['name']}"
            if source is not None:
                self.resolve(source["type"], field["type"], sub)
            elif "default" not in field:
                self._problem(sub, "reader field has no default and the writer does not have it")

    def _logical(self, w: Any, r: Any, path: str) -> None:
        wl = w.get("logicalType") if isinstance(w, dict) else None
        rl = r.get("logicalType") if isinstance(r, dict) else None
        if wl != rl:
            self._problem(path, f"logical type changed from {wl or 'none'} to {rl or 'none'}")
        elif wl == "decimal":
            if w.get("scale", 0) != r.get("scale", 0):
                self._problem(path, f"decimal scale changed from {w.get('scale', 0)} to {r.get('scale', 0)}")
            if r["precision"] < w["precision"]:
                self._problem(path, f"decimal precision narrowed from {w['precision']} to {r['precision']}")
