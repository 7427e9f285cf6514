"""The ledger of the harness mutation self-test: mutants that change no verdict, and why.

``EQUIVALENT`` maps a mutant's key (``harness_mutants.Mutant.key``: module, enclosing
function, operator, original fragment, occurrence) to the reason no test can catch it: the
edit changes no status, no measured figure and no tolerance of any check. Every other
surviving mutant fails ``python -m verification.suite.harness_mutation``.
"""

__all__ = ["EQUIVALENT"]

EQUIVALENT = {
}
