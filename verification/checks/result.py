"""What every check returns: a measured error against its tolerance, never a bare boolean."""

from dataclasses import asdict, dataclass, field

__all__ = ["CheckResult", "CheckFailure"]


@dataclass(frozen=True)
class CheckResult:
    """One check of one module, as it appears in ``results.json`` under ``checks``.

    Attributes:
        id: unique, stable name, e.g. ``"finite_difference/Linear/weight"``.
        module: the module checked, as its ``repr``.
        kind: ``finite_difference``, ``autograd``, ``trajectory``, ``property``, ``replica``,
            ``kink``, ``statistical``, ``accumulation``, ``side_effect`` or ``error``.
        passed: whether every compared element met ``|got - expected| <= atol + rtol·|expected|``.
        max_abs_error: largest ``|got - expected|`` over the compared elements.
        max_rel_error: largest ``|got - expected| / |expected|`` (elements with expected 0 skipped).
        tolerance: ``atol + rtol·|expected|`` at the worst element (the one nearest to failing).
        error_ratio: largest ``|got - expected| / (atol + rtol·|expected|)``; passes when <= 1.
        detail: the failure message (worst element first), or a one-line description.
        excluded: elements left out of the comparison, e.g. points within reach of a kink.
        convention: where the module follows another convention than refnet's (ReLU's slope
            at 0, a loss's normalisation), one sentence saying so; a convention difference is
            a fact about the module, not a failure.
        component: the component of a target the check belongs to (``linear``, ``mse_loss``,
            ``training``, …; see ``verification.suite.conformance``), empty outside a target run.
        case: the name of the case that produced it (``verification.rerun`` reruns it).
        scale: the size of what was compared, max |expected| over the compared elements
            (0 where no tensor was compared, such as a raised error or a statistical test).
        detectable: the check's detection power, the largest tolerance of any compared
            element divided by ``scale``: a relative error above it on the largest element
            always fails. Below 1 for every check that can fail (the README's table); 0 where
            no tensor was compared.
        dtype: the dtype the check ran in (``"float64"``, ``"float32"``): torch's default
            dtype, and that of every input, during its case; empty outside a target run.
        diagnosis: for a failing check, the smallest fact that explains the failure
            (verification/checks/diagnosis.py: "×2.00: an extra factor 2", "opposite sign",
            "transposed", …, or "no recognisable pattern (…)"); empty when it passes.
    """

    id: str
    module: str
    kind: str
    passed: bool
    max_abs_error: float
    max_rel_error: float
    tolerance: float
    error_ratio: float
    detail: str = ""
    excluded: int = 0
    convention: str = ""
    component: str = ""
    case: str = ""
    scale: float = 0.0
    detectable: float = 0.0
    dtype: str = ""
    diagnosis: str = ""
    figure: dict | None = field(default=None, compare=False)

    def as_dict(self):
        """The JSON form: the contract's keys plus ``error_ratio``, ``detail``, ``excluded``,
        ``convention``, ``component``, ``case``, ``scale``, ``detectable``, ``dtype`` and
        ``diagnosis``, and ``figure`` where there is one."""
        record = asdict(self)
        if record["figure"] is None:
            del record["figure"]
        record["status"] = "pass" if record.pop("passed") else "fail"
        return record


class CheckFailure(AssertionError):
    """Raised by the ``assert_*`` helpers; carries the failed ``CheckResult``."""

    def __init__(self, result):
        super().__init__(result.detail)
        self.result = result
