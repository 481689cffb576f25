"""connectors.offset_file: a complete copy of the engine's offsets file, put back over an empty or broken one.

A stand-in reader judges the file here (whole when it opens with OFFS and closes with END); the Java reader is
proven through the real engine in tests/e2e/test_faults.py.
"""

from __future__ import annotations

import logging
import os

import pytest

from connectors.offset_file import OffsetFileGuard


def whole(path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"OFFS") and data.endswith(b"END")


def guard(tmp_path) -> OffsetFileGuard:
    return OffsetFileGuard(tmp_path / "offsets.dat", whole)


def test_a_whole_file_is_kept_once_and_again_after_it_changes(tmp_path):
    g = guard(tmp_path)
    g.path.write_bytes(b"OFFS lsn=1 END")
    assert g.keep() is True and g.kept.read_bytes() == b"OFFS lsn=1 END"
    assert g.keep() is False  # unchanged: no second copy
    g.path.write_bytes(b"OFFS lsn=22 END")
    os.utime(g.path, ns=(1, 1))  # a new write, even within the clock's resolution
    assert g.keep() is True and g.kept.read_bytes() == b"OFFS lsn=22 END"
    assert not g.kept.with_name(g.kept.name + ".tmp").exists()


def test_an_empty_or_half_written_file_never_replaces_the_copy(tmp_path):
    g = guard(tmp_path)
    assert g.keep() is False and not g.kept.exists()  # nothing written yet
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    g.path.write_bytes(b"")
    assert g.keep() is False
    g.path.write_bytes(b"OFFS lsn=2")
    assert g.keep() is False
    assert g.kept.read_bytes() == b"OFFS lsn=1 END"
    assert not g.kept.with_name(g.kept.name + ".tmp").exists()


def test_an_empty_file_at_start_is_replaced_by_the_copy(tmp_path, caplog):
    g = guard(tmp_path)
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    g.path.write_bytes(b"")  # what a kill between the truncate and the write leaves
    with caplog.at_level(logging.WARNING, logger="trueup.connect.offsets"):
        assert g.restore() is True
    assert g.path.read_bytes() == b"OFFS lsn=1 END"
    assert "was empty" in caplog.text and str(g.kept) in caplog.text


def test_an_unreadable_file_at_start_is_replaced_by_the_copy(tmp_path, caplog):
    g = guard(tmp_path)
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    g.path.write_bytes(b"OFFS lsn=2")
    with caplog.at_level(logging.WARNING, logger="trueup.connect.offsets"):
        assert g.restore() is True
    assert g.path.read_bytes() == b"OFFS lsn=1 END"
    assert "unreadable (10 bytes)" in caplog.text


def test_a_whole_file_or_no_copy_is_left_alone(tmp_path):
    g = guard(tmp_path)
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    g.path.write_bytes(b"OFFS lsn=2 END")
    assert g.restore() is False and g.path.read_bytes() == b"OFFS lsn=2 END"
    g.kept.unlink()
    g.path.write_bytes(b"")
    assert g.restore() is False and g.path.read_bytes() == b""


def test_a_missing_file_is_a_fresh_start_and_the_old_copy_goes(tmp_path):
    """Removed on purpose to snapshot again: a kill during the first write after it must not bring back the
    offsets from before the reset."""
    g = guard(tmp_path)
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    g.path.unlink()
    assert g.restore() is False and not g.path.exists() and not g.kept.exists()
    g.path.write_bytes(b"")  # then killed mid-write: nothing to restore, Debezium snapshots as asked
    assert g.restore() is False and g.path.read_bytes() == b""


def test_a_reader_that_fails_for_another_reason_stops_the_start_and_never_the_copying(tmp_path, caplog):
    state = {"broken": False}

    def reader(path):
        if state["broken"]:
            raise LookupError("class not found")
        return whole(path)

    g = OffsetFileGuard(tmp_path / "offsets.dat", reader)
    g.path.write_bytes(b"OFFS lsn=1 END")
    g.keep()
    state["broken"] = True
    g.path.write_bytes(b"OFFS lsn=2 END")
    with caplog.at_level(logging.WARNING, logger="trueup.connect.offsets"):
        assert g.keep() is False and g.keep() is False
    assert caplog.text.count("could not keep a copy") == 1  # once, not once per batch
    assert g.kept.read_bytes() == b"OFFS lsn=1 END"
    with pytest.raises(RuntimeError, match=f"cannot judge the offsets file {g.path}: class not found"):
        g.restore()
    assert g.path.read_bytes() == b"OFFS lsn=2 END"  # nothing rolled back on a verdict nobody gave
