"""trueup.stack.processes: ports, a real short-lived child process, log tails."""

from __future__ import annotations

import os
import socket
import time

from trueup.stack.processes import alive, free_port, log_tail, port_open, spawn, stop


def test_free_port_is_bindable():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        assert sock.getsockname()[1] == port


def test_port_open():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port, timeout=0.2)


def test_spawn_alive_stop(tmp_path):
    log = tmp_path / "logs" / "sleep.log"
    pid = spawn(["sleep", "5"], log)
    try:
        assert pid > 0
        assert alive(pid)
        assert log.exists()
        started = time.monotonic()
        stop(pid, timeout=3)
        assert not alive(pid)
        assert time.monotonic() - started < 3
    finally:
        stop(pid, timeout=1)


def _wait_exit(pid: int, timeout: float = 5.0) -> None:
    """Reap our own short-lived child so it does not linger as a zombie."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.02)


def test_spawn_appends_output_to_log(tmp_path):
    log = tmp_path / "child.log"
    log.write_text("earlier run\n")
    pid = spawn(["sh", "-c", "echo out; echo err >&2"], log)
    try:
        _wait_exit(pid)
        assert not alive(pid)
        assert log_tail(log) == ["earlier run", "out", "err"]
    finally:
        stop(pid, timeout=1)


def test_alive_of_nothing():
    assert not alive(None)
    assert not alive(0)


def test_stop_of_a_gone_process_is_a_no_op(tmp_path):
    pid = spawn(["true"], tmp_path / "true.log")
    stop(pid, timeout=2)
    assert not alive(pid)
    stop(pid, timeout=0.1)  # second stop must not raise
    stop(None)
    assert not alive(pid)


def test_log_tail_returns_last_lines(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, lines=3) == ["line 97", "line 98", "line 99"]
    assert len(log_tail(log)) == 20
    assert log_tail(log)[0] == "line 80"


def test_log_tail_short_file_and_missing_file(tmp_path):
    log = tmp_path / "short.log"
    log.write_text("only\nthree\nlines")
    assert log_tail(log, lines=10) == ["only", "three", "lines"]
    assert log_tail(tmp_path / "missing.log") == []


def test_log_tail_survives_undecodable_bytes(tmp_path):
    log = tmp_path / "bin.log"
    log.write_bytes(b"ok\n\xff\xfe broken\nlast\n")
    tail = log_tail(log, lines=2)
    assert tail[-1] == "last"
    assert "broken" in tail[0]
