"""Calling the functions a user's app registers (look-ups, transforms, adapters), which may be sync or async.

A coroutine function is awaited on the activity's event loop; a plain function runs in a thread, so a blocking
call (a SQL driver, `requests`) never stalls the worker's other activities.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import Any


class UnknownName(KeyError):
    """The app registers no look-up, transform or system by this name. Retrying cannot help: the run fails saying so.

    (A plain `KeyError` from a user's own code is an ordinary error, and retried.)
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


async def call(function: Callable[..., Any], *args: Any) -> Any:
    """`function(*args)`, awaited when it is async, in a thread when it is not."""
    if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(getattr(function, "__call__", None)):  # noqa: B004
        return await function(*args)
    result = await asyncio.to_thread(function, *args)
    if inspect.isawaitable(result):  # a plain callable that hands back a coroutine (a partial, a lambda)
        return await result
    return result
