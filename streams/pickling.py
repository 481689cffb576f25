"""Pickling of state, links and digests: protocol 4, with UTC written as a reference to datetime.timezone.utc.

CPython pickles a datetime.timezone through copyreg._slotnames, a Python-level lookup it cannot cache on the C
type, once per aware datetime; every member's data carries at least two. A reducer for the type skips it, and
the shared UTC instance loads back as itself. Pickles written without the reducer load as before.
"""

from __future__ import annotations

import copyreg
import datetime
import pickle

PROTOCOL = 4


def _reduce_timezone(tz: datetime.timezone):
    if tz is datetime.timezone.utc:
        return getattr, (datetime.timezone, "utc")
    return datetime.timezone, tz.__getinitargs__()


copyreg.pickle(datetime.timezone, _reduce_timezone)


def dumps(value) -> bytes:
    return pickle.dumps(value, protocol=PROTOCOL)


def loads(value: bytes):
    return pickle.loads(value)
