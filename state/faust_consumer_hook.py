"""Run a hook on the consumer a Faust app creates, once per hook name.

Faust makes `app.consumer` lazily (it needs the running loop), so the hook wraps the app's consumer factory;
a consumer made already gets the hook at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust


def on_new_consumer(app: faust.App, name: str, hook: Callable[[Any], Any]) -> None:
    """Call before the app starts: hook(consumer) changes the consumer in place and returns it."""
    flag = f"_trueup_hook_{name}"
    if getattr(app, flag, False):
        return
    setattr(app, flag, True)
    new_consumer = app._new_consumer

    def _new_consumer() -> Any:
        return hook(new_consumer())

    app._new_consumer = _new_consumer  # type: ignore[method-assign]
    if app._consumer is not None:
        hook(app._consumer)
