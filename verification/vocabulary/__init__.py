"""What the adapter contract and the checks both speak of, below both: an adapter declares it
(``verification/targets/``), a check runs it (``verification/checks/``), and neither imports
the other for it."""
