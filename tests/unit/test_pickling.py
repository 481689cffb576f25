"""Pickled state keeps aware datetimes exact, with UTC as the shared instance."""

from __future__ import annotations

import datetime
import io
import pickle
from decimal import Decimal

from streams import pickling


def test_utc_loads_back_as_the_shared_instance_and_other_zones_as_equal_ones():
    utc = datetime.datetime(2026, 11, 28, 5, 57, 17, 693441, tzinfo=datetime.timezone.utc)
    east = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    named = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone(-datetime.timedelta(hours=5), "EST"))
    loaded = pickling.loads(pickling.dumps({"at": utc, "east": east, "named": named, "amount": Decimal("2016.40")}))
    assert loaded == {"at": utc, "east": east, "named": named, "amount": Decimal("2016.40")}
    assert loaded["at"].tzinfo is datetime.timezone.utc
    assert loaded["named"].tzname() == "EST" and loaded["east"].utcoffset() == datetime.timedelta(hours=2)


def test_the_bytes_are_those_of_the_generic_path_so_stored_digests_still_match():
    def stock(value) -> bytes:
        out = io.BytesIO()
        pickler = pickle.Pickler(out, protocol=pickling.PROTOCOL)
        pickler.dispatch_table = {}  # without the registered reducer
        pickler.dump(value)
        return out.getvalue()

    zones = [datetime.timezone.utc, datetime.timezone(datetime.timedelta(hours=2)),
             datetime.timezone(-datetime.timedelta(hours=5), "EST")]
    for value in [*zones, {"at": datetime.datetime(2026, 11, 28, tzinfo=zones[0]), "amount": Decimal("1.10")}]:
        assert pickling.dumps(value) == stock(value)
