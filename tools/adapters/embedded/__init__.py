"""The embedded adapters: OMS, WMS and carriers on the project's own database (the digital twin).

This is the reference implementation of the Protocols in :mod:`tools.adapters.protocols` and the
network every simulation, eval and demo runs on. It must never call out of the process: anything a
real system would decide (rates, transit times, tracking numbers) is derived from the database and
the injected clock, so the same inputs give the same network.
"""

from __future__ import annotations

from core.clock import Clock
from core.db import Database
from tools.adapters.embedded.carriers import EmbeddedCarriers
from tools.adapters.embedded.notifier import EmbeddedNotifier
from tools.adapters.embedded.oms import EmbeddedOMS
from tools.adapters.embedded.wms import EmbeddedWMS
from tools.adapters.protocols import Adapters

__all__ = ["EmbeddedCarriers", "EmbeddedNotifier", "EmbeddedOMS", "EmbeddedWMS", "embedded_adapters"]


def embedded_adapters(db: Database, clock: Clock) -> Adapters:
    """The three embedded adapters on one database and clock, as the value to inject."""
    return Adapters(
        oms=EmbeddedOMS(db, clock),
        wms=EmbeddedWMS(db, clock),
        carriers=EmbeddedCarriers(db, clock),
        notifier=EmbeddedNotifier(db, clock),
    )
