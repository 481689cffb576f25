"""trueup.stack.prerequisites: Java version parsing and the install hint (java itself is faked)."""

from __future__ import annotations

import subprocess
from types import SimpleNamespace

import pytest

from trueup.stack import prerequisites
from trueup.stack.prerequisites import PrerequisiteError, java_major, require_java

JAVA = "/usr/lib/jvm/bin/java"


@pytest.fixture()
def fake_java(monkeypatch):
    """Make `java -version` print the given text (on stderr, as the JVM does); None means no java."""
    calls = []

    def install(output: str | None, stream: str = "stderr"):
        monkeypatch.setattr(prerequisites.shutil, "which", lambda name: JAVA if output is not None and name == "java"
                            else None)

        def run(argv, **kwargs):
            calls.append(argv)
            out = {"stdout": "", "stderr": ""}
            out[stream] = output
            return SimpleNamespace(returncode=0, **out)

        monkeypatch.setattr(prerequisites.subprocess, "run", run)
        return calls

    return install


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6)\n', 17),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment (build 1.8.0_392-b08)\n', 8),
        ('openjdk version "21" 2023-09-19\nOpenJDK Runtime Environment (build 21+35-2513)\n', 21),
        ('openjdk version "11.0.22" 2024-01-16\n', 11),
        ('Picked up JAVA_TOOL_OPTIONS: -Xss1m\nopenjdk version "17.0.9" 2023-10-17\n', 17),
        ('openjdk version "22-ea" 2024-03-19\n', 22),
    ],
)
def test_java_major_parses_version_banner(fake_java, output, major):
    calls = fake_java(output)
    assert java_major() == major
    assert calls == [[JAVA, "-version"]]


def test_java_major_reads_stdout_too(fake_java):
    fake_java('openjdk version "17.0.1"\n', stream="stdout")
    assert java_major() == 17


def test_java_major_without_java(fake_java):
    calls = fake_java(None)
    assert java_major() is None
    assert calls == []


def test_java_major_unparseable_banner(fake_java):
    fake_java("Error: could not create the Java Virtual Machine.\n")
    assert java_major() is None


@pytest.mark.parametrize("version", ['"17.0.15"', '"21.0.2"', '"25"'])
def test_require_java_accepts_17_and_later(fake_java, version):
    fake_java(f"openjdk version {version} 2025-01-01\n")
    require_java()  # no exception
    assert java_major() >= 17


@pytest.mark.parametrize(
    ("output", "found"),
    [
        ('java version "1.8.0_392"\n', "found Java 8"),
        ('openjdk version "11.0.22"\n', "found Java 11"),
        (None, "no java on PATH"),
    ],
)
def test_require_java_names_install_commands(fake_java, output, found):
    fake_java(output)
    with pytest.raises(PrerequisiteError) as exc:
        require_java()
    message = str(exc.value)
    assert found in message
    assert "apt-get install -y openjdk-17-jre-headless" in message
    assert "brew install openjdk@17" in message


def test_monkeypatching_does_not_leak():
    # the fixture above patches the shared modules; make sure the real ones are back
    assert prerequisites.subprocess.run is subprocess.run
