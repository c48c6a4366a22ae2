"""In-process notices that data an in-memory cache holds may have changed.

A cache that answers from memory (the decision API's twin snapshot, :mod:`services.decisions`)
checks the database on a timer; writes made by *this* process need not wait for the timer: the
code that commits them :func:`publish` es a topic, and every subscriber hears it at once, in the
writer's thread, after the commit. Subscribers only mark themselves stale (a flag: no I/O, no
locks held by the writer are waited on); the next read checks the database.

Only a hint, never the whole story: other processes (workers, the CLI) publish to their own
process, so a subscriber keeps its own bound on staleness. Topics are strings, so ``core`` names
no caller; :data:`NETWORK` and :data:`SOURCING` are the two in use.

What this module must never do: hold a subscriber alive (bound methods are held weakly, so a
discarded cache stops hearing), or let a failing subscriber fail the write that published.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from types import MethodType

NETWORK = "network"
"""Nodes or carriers (status, capacity, backlog, outages) may have changed: any executed tool write."""
SOURCING = "sourcing"
"""The active sourcing profile or the running experiment may have changed."""

Subscriber = Callable[[str], None]
log = logging.getLogger(__name__)
_lock = threading.Lock()
_subscribers: list[Callable[[], Subscriber | None]] = []


def subscribe(callback: Subscriber) -> None:
    """Call ``callback(topic)`` on every :func:`publish` in this process. A bound method is held
    weakly (it stops when its object is garbage); any other callable is held for good."""
    ref = weakref.WeakMethod(callback) if isinstance(callback, MethodType) else _Strong(callback)
    with _lock:
        _subscribers[:] = [r for r in _subscribers if r() is not None]
        _subscribers.append(ref)


class _Strong:
    """A plain callable in the shape of a weak reference (calling it gives the callable)."""

    def __init__(self, fn: Subscriber) -> None:
        self.fn = fn

    def __call__(self) -> Subscriber:
        return self.fn


def publish(topic: str) -> None:
    """Tell every live subscriber that ``topic`` changed (call after the change is committed)."""
    with _lock:
        live = [(ref, ref()) for ref in _subscribers]
        _subscribers[:] = [ref for ref, fn in live if fn is not None]
    for _, fn in live:
        if fn is None:
            continue
        try:
            fn(topic)
        except Exception:  # the write is done; a subscriber's failure is its own
            log.exception("a change subscriber failed on %r", topic)
