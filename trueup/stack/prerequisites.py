"""Check the runtimes trueup needs beyond Python, naming the command that installs a missing one."""

from __future__ import annotations

import re
import shutil
import subprocess

from trueup.stack.postgres import PostgresError, find_binary

JAVA_INSTALL = (
    "a Java 17+ runtime is needed for Debezium. Install it: on Debian/Ubuntu "
    "`sudo apt-get install -y openjdk-17-jre-headless`, on macOS `brew install openjdk@17`"
)


class PrerequisiteError(RuntimeError):
    """A runtime is missing; the message carries the install command."""


def java_major() -> int | None:
    java = shutil.which("java")
    if java is None:
        return None
    out = subprocess.run([java, "-version"], capture_output=True, text=True)
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major


def require_java() -> None:
    major = java_major()
    if major is None or major < 17:
        found = "no java on PATH" if major is None else f"found Java {major}"
        raise PrerequisiteError(f"{found}: {JAVA_INSTALL}")


def require_postgres(bin_dir=None) -> None:
    try:
        find_binary("initdb", bin_dir)
        find_binary("pg_ctl", bin_dir)
    except PostgresError as exc:
        raise PrerequisiteError(str(exc)) from None


def check_all(bin_dir=None) -> None:
    require_java()
    require_postgres(bin_dir)
