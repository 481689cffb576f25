"""trueup.stack.state: stack.json save/load."""

from __future__ import annotations

from trueup.stack.state import ProcessRecord, StackState


def test_save_load_roundtrip(tmp_path):
    data_dir = tmp_path / "data"
    state = StackState(
        data_dir=str(data_dir),
        bootstrap="127.0.0.1:39092",
        broker=ProcessRecord(pid=101, log=str(data_dir / "logs" / "broker.log"), port=39092),
        postgres_home=str(data_dir / "pg"),
        postgres_port=55432,
        connectors={
            "crm": ProcessRecord(pid=201, log="crm.log"),
            "billing": ProcessRecord(pid=None, log="billing.log", paused=True),
        },
        workers=[ProcessRecord(pid=301, log="w0.log", port=6066), ProcessRecord(pid=302, log="w1.log", port=6067)],
        config_file="/etc/trueup.toml",
    )
    state.save()
    assert StackState.path(data_dir) == data_dir / "stack.json"
    assert StackState.path(data_dir).is_file()
    loaded = StackState.load(data_dir)
    assert loaded == state
    assert isinstance(loaded.broker, ProcessRecord)
    assert isinstance(loaded.connectors["billing"], ProcessRecord)
    assert loaded.connectors["billing"].paused is True
    assert [w.port for w in loaded.workers] == [6066, 6067]
    assert sorted(p.name for p in data_dir.iterdir()) == ["stack.json"]


def test_external_kafka_roundtrip(tmp_path):
    state = StackState(data_dir=str(tmp_path), bootstrap="kafka:9092")
    state.save()
    loaded = StackState.load(tmp_path)
    assert loaded == state
    assert loaded.broker is None
    assert loaded.connectors == {}
    assert loaded.workers == []


def test_save_overwrites(tmp_path):
    state = StackState(data_dir=str(tmp_path), workers=[ProcessRecord(pid=1)])
    state.save()
    state.workers.append(ProcessRecord(pid=2))
    state.connectors["erp"] = ProcessRecord(pid=3)
    state.save()
    loaded = StackState.load(tmp_path)
    assert [w.pid for w in loaded.workers] == [1, 2]
    assert loaded.connectors["erp"].pid == 3


def test_load_missing_or_garbage(tmp_path):
    assert StackState.load(tmp_path) is None
    (tmp_path / "stack.json").write_text("{truncated")
    assert StackState.load(tmp_path) is None
