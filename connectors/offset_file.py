"""The embedded engine's offsets file, kept safe from a kill while the engine rewrites it.

Kafka's FileOffsetBackingStore truncates the file and writes it again on every flush, and reads an empty file as
"no offsets": a connector killed in that moment starts over with a new snapshot. So a complete copy stays beside
the file, and at start an empty or unreadable file is replaced by it. Resuming from the copy re-sends what came
after it; downstream drops those as duplicates. A missing file is a deliberate fresh start: it stays missing and
the copy goes too.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("trueup.connect.offsets")


class OffsetFileGuard:
    """Copies the offsets file aside once it changed and reads back whole; puts the copy back over a broken file."""

    def __init__(self, path: Path, readable: Callable[[Path], bool]) -> None:
        self.path = path
        self.kept = path.with_name(path.name + ".kept")
        self.readable = readable
        self._kept_stat: tuple[int, int] | None = None
        self._failed: str | None = None

    def restore(self) -> bool:
        """Before the engine opens the file: put the kept copy back if the file is there but empty or unreadable.

        Without the file the copy goes too: the start is a fresh one, and a kill during its first write must not
        bring back the offsets from before it.
        """
        if not self.path.exists():
            if self.kept.exists():
                self.kept.unlink()
                log.info("no offsets file %s: a fresh start; the copy kept from before it is removed", self.path)
            return False
        if not self.kept.exists():
            return False
        try:
            if self.path.stat().st_size > 0 and self.readable(self.path):
                return False
        except Exception as exc:  # noqa: BLE001 - not a verdict on the file: stop here, naming it
            raise RuntimeError(f"cannot judge the offsets file {self.path}: {exc}") from exc
        size = self.path.stat().st_size
        self._replace(self.kept, self.path)
        log.warning("offsets file %s was %s (the connector was stopped while writing it): restored the copy kept "
                    "at %s; the connector resumes from there and sends the records after it again",
                    self.path, "empty" if size == 0 else f"unreadable ({size} bytes)", self.kept)
        return True

    def keep(self) -> bool:
        """Between two engine flushes: copy the file aside if it changed since the last copy and reads back whole."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return False
        now = (stat.st_mtime_ns, stat.st_size)
        if now == self._kept_stat or stat.st_size == 0:
            return False
        candidate = self.kept.with_name(self.kept.name + ".tmp")
        try:
            shutil.copyfile(self.path, candidate)
            if not self.readable(candidate):  # caught mid-write: the next batch tries again
                candidate.unlink(missing_ok=True)
                return False
            os.replace(candidate, self.kept)
        except Exception as exc:  # noqa: BLE001 - the copy is a safety net: failing to make one must not stop
            if str(exc) != self._failed:  # the connector; said once per distinct failure, not once per batch
                log.warning("could not keep a copy of the offsets file %s: %s", self.path, exc)
            self._failed = str(exc)
            return False
        self._failed = None
        self._kept_stat = now
        return True

    @staticmethod
    def _replace(source: Path, target: Path) -> None:
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def java_reads_offsets(path: Path) -> bool:
    """Whether Kafka's own reader loads the file as an offsets map (needs the engine's JVM started).

    Only an I/O failure (end of file, a corrupt stream) says the file is broken; any other error is raised.
    """
    import jpype

    files = jpype.JClass("java.nio.file.Files")
    paths = jpype.JClass("java.nio.file.Paths")
    reader = jpype.JClass("org.apache.kafka.connect.util.SafeObjectInputStream")
    io_error = jpype.JClass("java.io.IOException")
    try:
        stream = reader(files.newInputStream(paths.get(str(path), [])))
        try:
            return isinstance(stream.readObject(), jpype.JClass("java.util.Map"))
        finally:
            stream.close()
    except io_error:
        return False
