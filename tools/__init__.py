"""Tools: the only way agents touch the OMS, WMS and carriers (see tools/adapters for the systems)."""
