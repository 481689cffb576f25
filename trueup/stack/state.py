"""What the stack started and where, persisted in <data_dir>/stack.json so every CLI call sees the same stack."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class ProcessRecord:
    pid: int | None = None
    log: str | None = None
    port: int | None = None
    paused: bool = False


@dataclass
class StackState:
    data_dir: str
    bootstrap: str | None = None
    broker: ProcessRecord | None = None  # None when Kafka is external
    postgres_home: str | None = None  # None when every source is external
    postgres_port: int | None = None
    connectors: dict[str, ProcessRecord] = field(default_factory=dict)
    workers: list[ProcessRecord] = field(default_factory=list)
    config_file: str | None = None

    @classmethod
    def path(cls, data_dir: Path) -> Path:
        return data_dir / "stack.json"

    @classmethod
    def load(cls, data_dir: Path) -> StackState | None:
        try:
            raw = json.loads(cls.path(data_dir).read_text())
        except (OSError, ValueError):
            return None
        raw["broker"] = ProcessRecord(**raw["broker"]) if raw.get("broker") else None
        raw["connectors"] = {k: ProcessRecord(**v) for k, v in raw.get("connectors", {}).items()}
        raw["workers"] = [ProcessRecord(**w) for w in raw.get("workers", [])]
        return cls(**raw)

    def save(self) -> None:
        path = self.path(Path(self.data_dir))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, path)
