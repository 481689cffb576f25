"""A partition paused and resumed while its records are being handed over loses none of them
(state/faust_handover.py), against a Tansu broker started here.

A worker is handed 20,000 records over 4 partitions while a timer pauses one of them for 2 ms every 5 ms: every
offset must reach the agent and the group's commits must end at the partitions' ends. Without the fix, plain Faust
drops records, and the offset watch (state/faust_offset_watch.py) must count exactly the ones missing.
`python -m tests.integration.test_paused_partitions` runs it with and without the fix, and without it but with the
stall repair, and prints what each lost and how often the repair read a partition again.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from tests.stack_support import tansu
from trueup.stack.processes import alive, free_port, spawn, stop

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOPIC, GROUP, PARTITIONS, PER_PARTITION = "paused-input", "paused-test", 4, 5000
REREAD = "reading again from the first record not handed over"
REPAIRED = "reading it again"  # the stall repair's warning
SKIPPED = "were passed over, not handed to the agent"  # the offset watch's warning
LOST = "the group's commit passed them: lost"  # its error
REASSIGNED = "still missing when the partition was reassigned"


def feed(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(TOPIC, num_partitions=PARTITIONS, replication_factor=1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    for i in range(PARTITIONS * PER_PARTITION):
        producer.produce(TOPIC, value=b"x" * 100, partition=i % PARTITIONS)
        if i % 1000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0


def committed(bootstrap: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP, "enable.auto.commit": False})
    try:
        return [tp.offset for tp in consumer.committed([TopicPartition(TOPIC, p) for p in range(PARTITIONS)],
                                                       timeout=10)]
    finally:
        consumer.close()


def run(fix: bool, stall_s: float | None = None, within_s: float = 120, rewind: bool = False) -> dict:
    """Feed a worker under pauses until its dump and the group's commits stop moving, or for within_s at most;
    what it was handed. With rewind, the worker then stops pausing and reads every partition again from its
    start, and "rewound" is its dump once that has settled too."""
    with tempfile.TemporaryDirectory(prefix="trueup-paused-") as tmp, tansu(Path(tmp)) as bootstrap:
        port, log = free_port(), Path(tmp) / "worker.log"
        env = dict(os.environ, PAUSED_BOOTSTRAP=bootstrap, PAUSED_WEB_PORT=str(port), PAUSED_FIX="1" if fix else "0")
        if stall_s is not None:
            env["PAUSED_STALL_S"] = str(stall_s)
        pid = spawn([sys.executable, "-m", "tests.integration.paused_app", "worker"], log, env=env, cwd=ROOT)
        try:
            dump = None
            deadline = time.monotonic() + 60
            while dump is None and time.monotonic() < deadline:  # the worker's web server is up once it answers
                assert alive(pid), log.read_text(errors="replace")[-5000:]
                dump = _dump(port)
                time.sleep(0.5)
            feed(bootstrap)
            # Done once everything is handed over and committed, or once nothing but the pause count has moved
            # for a while: long enough, with the stall repair, for it to act on a stalled partition.
            quiet_s = 2.0 if stall_s is None else 3 * stall_s + 2
            ends = [PER_PARTITION] * PARTITIONS
            dump, offsets = _settle(pid, port, bootstrap, log, quiet_s, within_s,
                                    lambda d, o: d["records"] >= PARTITIONS * PER_PARTITION and o == ends)
            rewound = rewinding = None
            if rewind:
                rewinding = _get(port, "/rewind")
                rewound, _ = _settle(pid, port, bootstrap, log, 2.0, 60,
                                     lambda d, o: all(n == PER_PARTITION for n in d["distinct"].values()))
            text = log.read_text(errors="replace")
            if os.environ.get("PAUSED_KEEP_LOGS"):  # a directory to keep each run's worker log in, for reading
                Path(os.environ["PAUSED_KEEP_LOGS"], f"worker-{time.time():.0f}-fix{int(fix)}.log").write_text(text)
            return {"dump": dump, "committed": offsets, "rereads": text.count(REREAD), "repairs": text.count(REPAIRED),
                    "skip_warnings": text.count(SKIPPED), "lost_errors": text.count(LOST), "rewind": rewinding,
                    "rewound": rewound, "log": text[-5000:], "full_log": text}
        finally:
            stop(pid, timeout=30)


def _settle(pid: int, port: int, bootstrap: str, log: Path, quiet_s: float, within_s: float, done) -> tuple:
    """(dump, committed offsets) once done(dump, offsets), or once nothing but the pause count has moved for
    quiet_s (counting from the first record), or after within_s."""
    dump, offsets = None, None
    last, since, deadline = None, time.monotonic(), time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert alive(pid), log.read_text(errors="replace")[-5000:]
        time.sleep(1)
        dump, offsets = _dump(port), committed(bootstrap)
        if dump is not None and done(dump, offsets):
            break
        # A partition read again is moving too: under these pauses one can be held and read again from the same
        # record for a few seconds running.
        rereads = log.read_text(errors="replace").count(REREAD)
        moved = (dump and {k: v for k, v in dump.items() if k != "pauses"}, offsets, rereads)
        if moved != last or not (dump and dump["records"]):
            last, since = moved, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            break
    return dump, offsets


def _get(port: int, path: str) -> dict | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return json.load(resp)
    except OSError:
        return None


def _dump(port: int) -> dict | None:
    return _get(port, "/dump")


def test_no_record_is_lost_to_a_pause_while_its_partition_is_handed_over():
    result = run(fix=True)
    dump = result["dump"]
    assert dump is not None, result["log"]
    assert dump["pauses"] > 100, dump  # the timer really paused partitions throughout
    # Every offset of every partition reached the agent (the commits alone cannot tell: they pass lost records).
    assert dump["distinct"] == {str(p): PER_PARTITION for p in range(PARTITIONS)}, dump
    assert result["committed"] == [PER_PARTITION] * PARTITIONS, result
    assert result["rereads"] > 0, result["log"]  # records were held back and read again, not just lucky timing
    assert dump["skipped"] == 0 and dump["missing"] == 0, dump  # nothing the watch could take for a hole


def holes(dump: dict) -> int:
    """Offsets never handed over between each partition's lowest and highest ones handed over, from the offsets
    the agent kept. (Records lost before a partition's first one handed over have nothing before them to follow.)"""
    return sum(dump["highest"][p] + 1 - dump["lowest"][p] - dump["distinct"][p] for p in dump["distinct"])


def test_the_offset_watch_finds_every_record_plain_faust_passes_over_and_its_commit_then_passes():
    """Plain Faust passes records over under the pauses, and its commits pass them: the watch's holes, settled
    as lost against the commits or still open, are exactly the offsets the agent never got. Read again from
    their start, the partitions open no new hole and leave none open."""
    result = run(fix=False, rewind=True)
    dump, rewound = result["dump"], result["rewound"]
    assert dump is not None and rewound is not None, result["log"]
    assert result["rewind"] == {"rewound": PARTITIONS}, result["rewind"]
    assert holes(dump) > 0, dump  # plain Faust lost records under the pauses, as measured before
    assert dump["skipped"] == dump["missing"] + dump["lost"] == holes(dump), dump
    assert dump["lost"] > 0 and result["lost_errors"] > 0, dump  # its commits passed some, and it was said
    assert result["skip_warnings"] > 0, result["log"]
    assert rewound["distinct"] == {str(p): PER_PARTITION for p in range(PARTITIONS)}, rewound
    assert rewound["missing"] == 0 and rewound["skipped"] == dump["skipped"], rewound  # none left open, none new
    assert rewound["filled"] + rewound["lost"] == rewound["skipped"], rewound  # each hole closed once, one way
    assert REASSIGNED not in result["full_log"]


if __name__ == "__main__":
    for fix, stall_s in ((False, None), (True, None), (False, 3.0)):
        r = run(fix, stall_s)
        d = r["dump"] or {}
        print(f"fix={fix} stall repair={stall_s}: handed {d.get('records')} records, distinct {d.get('distinct')}, "
              f"committed {r['committed']}, pauses {d.get('pauses')}, read again {r['rereads']} times, "
              f"stalls repaired {r['repairs']}, offsets passed over {d.get('skipped')}, still missing {d.get('missing')} "
              f"(holes in what was handed over: {d and holes(d)})")
