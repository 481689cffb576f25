"""Pickled state keeps aware datetimes exact, with UTC as the shared instance."""

from __future__ import annotations

import datetime
import io
import pickle
from decimal import Decimal

import pytest

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


def _member() -> dict:
    return {"fields": {"id": "in_1", "amount_due": {"amount": Decimal("12.50"), "currency": "EUR"},
                       "issued_at": datetime.datetime(2026, 12, 7, 9, 30, tzinfo=datetime.timezone.utc)},
            "system": "billing", "table": "invoices", "position": "lsn:10 tx:4", "correlation_id": "billing-tx-4"}


def test_frozen_data_loads_back_equal_and_frozen_keeping_the_bytes_it_came_from():
    data = pickling.freeze(_member())
    loaded = pickling.loads(pickling.dumps({"members": {("self", "in_1"): {"data": data, "order": [1, 10]}}}))
    again = loaded["members"][("self", "in_1")]["data"]
    assert again == _member() and type(again) is pickling.Frozen
    assert again.pickled == data.pickled and again.pickled is not None
    assert pickling.loads(again.pickled) == _member()  # its own pickle is the plain dict's


def test_a_loaded_frozen_pickles_to_the_same_bytes_as_the_one_it_came_from():
    fresh = pickling.freeze({"invoice": pickling.freeze(_member()), "payments": {}})
    loaded = pickling.loads(pickling.dumps(fresh))
    assert pickling.dumps(loaded) == pickling.dumps(fresh)  # so digests of stored data do not move
    assert loaded["invoice"] == _member() and type(loaded["invoice"]) is pickling.Frozen


def test_a_loaded_frozen_is_not_pickled_again_but_copied():
    loaded = pickling.loads(pickling.dumps(pickling.freeze(_member())))
    kept = loaded.pickled
    pickling.dumps([loaded, loaded])
    assert loaded.pickled is kept


def test_frozen_data_refuses_every_change_since_its_kept_pickle_would_lose_it():
    data = pickling.freeze(_member())

    def merge():
        merged = data
        merged |= {"system": "erp"}

    for change in (lambda: data.__setitem__("system", "erp"), lambda: data.__delitem__("system"), data.clear,
                   lambda: data.pop("system"), data.popitem, lambda: data.setdefault("x", 1),
                   lambda: data.update(system="erp"), merge):
        with pytest.raises(TypeError, match="read-only"):
            change()
    assert data == _member()


def test_freeze_keeps_what_is_frozen_or_none():
    data = pickling.freeze(_member())
    assert pickling.freeze(data) is data and pickling.freeze(None) is None
