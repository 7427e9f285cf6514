"""How an implementation plugs in: the adapter contract (``Target``), loading one from a file
or an importable name, calling its modules safely, and refnet itself as one target."""
