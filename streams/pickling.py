"""Pickling of state, links and digests: protocol 4, with a registered reducer for datetime.timezone.

CPython pickles a datetime.timezone through copyreg._slotnames, a Python-level lookup it cannot cache on the C
type, once per aware datetime; every member's data carries at least two. The reducer skips it and writes the
very bytes the generic path writes, so digests of stored data do not change and UTC loads as the shared
instance.
"""

from __future__ import annotations

import copyreg
import datetime
import pickle

PROTOCOL = 4


def _reduce_timezone(tz: datetime.timezone):
    return datetime.timezone, tz.__getinitargs__()


copyreg.pickle(datetime.timezone, _reduce_timezone)


def dumps(value) -> bytes:
    return pickle.dumps(value, protocol=PROTOCOL)


def loads(value: bytes):
    return pickle.loads(value)
