"""Assertions shared by the tests of the verification checks."""


def assert_all_pass(results):
    """Every ``CheckResult`` passed, and there was at least one; a failure shows its detail."""
    assert results, "the check returned no results"
    for result in results:
        assert result.passed, result.detail


def failed_ids(results):
    """The ids of the failed ``CheckResult``s."""
    return {result.id for result in results if not result.passed}
