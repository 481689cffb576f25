"""Resolve Kafka Connect `${file:PATH:KEY}` placeholders the way Connect's FileConfigProvider does."""

from __future__ import annotations

import re
from pathlib import Path

PLACEHOLDER = re.compile(r"\$\{file:(?P<path>[^:}]+):(?P<key>[^}]+)\}")


class PlaceholderError(ValueError):
    """A placeholder names a file or key that cannot be read."""


def read_properties(path: Path) -> dict[str, str]:
    """Parse a Java properties file (key=value or key: value, # and ! comments)."""
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        key, _, value = _split(line)
        values[key] = value
    return values


def _split(line: str) -> tuple[str, str, str]:
    match = re.match(r"([^=:\s]+)\s*[=:]?\s*(.*)$", line)
    if not match:
        return line, "", ""
    return match.group(1), "=", match.group(2)


def resolve(config: dict[str, str], secrets_dir: Path | None, origin: str) -> dict[str, str]:
    """Replace every placeholder; a file missing at its literal path is looked up by name in secrets_dir."""
    cache: dict[Path, dict[str, str]] = {}

    def lookup(field: str, match: re.Match[str]) -> str:
        literal = Path(match.group("path"))
        path = literal
        if not path.is_file() and secrets_dir is not None:
            path = secrets_dir / literal.name
        if not path.is_file():
            where = f" or {secrets_dir / literal.name}" if secrets_dir else ""
            raise PlaceholderError(f"{origin}: field {field}: secrets file {literal}{where} not found")
        if path not in cache:
            cache[path] = read_properties(path)
        props = cache[path]
        key = match.group("key")
        if key not in props:
            raise PlaceholderError(f"{origin}: field {field}: key {key!r} missing from {path}")
        return props[key]

    return {
        field: PLACEHOLDER.sub(lambda m, f=field: lookup(f, m), value) if isinstance(value, str) else value
        for field, value in config.items()
    }


def write_properties(path: Path, values: dict[str, str]) -> None:
    """Write a properties file readable only by its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
