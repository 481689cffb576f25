"""Whether a Faust worker's tables are whole and its assignment still: the moment timers may act on them."""

from __future__ import annotations

import faust


def tables_settled(app: faust.App) -> bool:
    """Tables restored and no rebalance running.

    `recovery.completed` is set once, at the first recovery, and never cleared; `rebalancing` covers every
    later handover until its tables are restored. Before that, partitions may be half restored or moving.
    """
    return app.tables.recovery.completed.is_set() and not app.rebalancing
