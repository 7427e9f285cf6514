"""The statistics of many seeds: seed draws, per-seed training on both sides, the report's
reproduction over a grid of configurations, and the claims ledger."""
