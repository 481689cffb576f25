"""Pickling of state, links and digests: protocol 4, with registered reducers for datetime.timezone and Frozen.

CPython pickles a datetime.timezone through copyreg._slotnames, a Python-level lookup it cannot cache on the C
type, once per aware datetime; every member's data carries at least two. The reducer skips it and writes the
very bytes the generic path writes, so digests of stored data do not change and UTC loads as the shared
instance.

A member's data is written once and then copied, unchanged, into every state, link and digest that holds it: a
bucket's state is pickled again each time any of its members changes. `Frozen` data keeps its own pickle, made
the first time it is needed or kept from the bytes it was loaded from, so each later pickle copies those bytes
instead of walking its fields, Decimals and datetimes again.
"""

from __future__ import annotations

import copyreg
import datetime
import pickle

PROTOCOL = 4


def _reduce_timezone(tz: datetime.timezone):
    return datetime.timezone, tz.__getinitargs__()


copyreg.pickle(datetime.timezone, _reduce_timezone)


def _read_only(self, *args, **kwargs):
    raise TypeError("Frozen data is read-only: its pickle is kept, so a change would be lost")


class Frozen(dict):
    """A dict never changed after it is made, nor anything inside it, and so pickled once (see the module's text).

    Its own methods refuse changes; a change to a value inside it (its fields dict) would go unnoticed and be
    lost at the next pickle, so data that differs is always a new dict.
    """

    __slots__ = ("pickled",)
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __init__(self, *args, **kwargs) -> None:
        dict.__init__(self, *args, **kwargs)
        self.pickled = None


def freeze(data):
    """data as Frozen (data itself if it already is; None stays None)."""
    if data is None or type(data) is Frozen:
        return data
    return Frozen(data)


def thaw(pickled: bytes) -> Frozen:
    """Frozen data from its own pickle, which it keeps."""
    data = Frozen(pickle.loads(pickled))
    data.pickled = pickled
    return data


def _reduce_frozen(data: Frozen):
    if data.pickled is None:
        data.pickled = pickle.dumps(dict(data), protocol=PROTOCOL)
    return thaw, (data.pickled,)


copyreg.pickle(Frozen, _reduce_frozen)


def dumps(value) -> bytes:
    return pickle.dumps(value, protocol=PROTOCOL)


def loads(value: bytes):
    return pickle.loads(value)
