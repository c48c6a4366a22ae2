"""Adapters to the systems OrderOps acts on: OMS, WMS and carriers.

Each capability is a :class:`typing.Protocol` in :mod:`tools.adapters.protocols`; the embedded
implementation on the project's own database (:mod:`tools.adapters.embedded`) is the reference
and the digital twin used for simulation. Vendor adapters implement the same Protocols and must
pass the same conformance suite (tests/adapters).
"""
