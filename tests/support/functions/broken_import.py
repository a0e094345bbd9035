"""A handler module that fails while being imported (the runtime reports it at init)."""

raise RuntimeError("configuration missing: ORDERS_TABLE")
