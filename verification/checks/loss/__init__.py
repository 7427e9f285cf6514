"""Loss checks: a loss checked as a function, over a grid of shapes and at extreme inputs.

A loss follows the protocol ``forward(prediction, target) -> loss`` and ``backward() ->
dL/dprediction``. Its kind (``LossKind``, ``loss_kind``: verification/vocabulary/losses.py)
says what it must equal: MSE, cross-entropy (logits, one-hot or index targets), binary
cross-entropy (probabilities, 0/1 targets), or any element-wise loss of
``torch.nn.functional`` named with its keyword arguments (``loss_kind("huber_loss", {"delta":
1.0})``, an adapter's ``extra_losses``). ``check_loss`` judges it at every input
(``LossInput``): the grid (its main input and ``also_at``: batch 1 and more, 2 and 3 outputs)
fully, and the extreme inputs (``extreme_inputs``) by value and gradient:

1. **Normalisation** (``autograd/<name>/loss``, a fact or a failure): one L = k·c(shape)·S
   over every input, S the unnormalised sum of the loss terms, c a named reduction's factor
   and k a constant (``normalisation.py``).
2. Per grid input ``<tag>``: **consistency** (``finite_difference/<name>/<tag>/input``),
   **value** (``autograd/<name>/<tag>/loss``) and **gradient**
   (``autograd/<name>/<tag>/grad_prediction``) (``check.py``, ``comparisons.py``).
3. Per extreme input (``extreme-…``): value and gradient (``inputs.py`` says which inputs).
4. **Stabilisers** (binary cross-entropy): the ε-stabilised formula a loss follows where the
   plain one fails, measured from the passes already made (``stabilisers.py``).

One module per idea: ``formulas.py`` (S and the terms of each kind in float64, as torch
defines them; T, the scale of their round-off; the rtol of a loss value), ``inputs.py`` (the
grid and the extreme inputs), ``evaluation.py`` (the loss called once per input: its value,
S, T and the protocol pass the checks judge), ``normalisation.py`` (the fit of L = k·c·S and
its result), ``comparisons.py`` (value and gradient at one input), ``judgement.py`` (a kind
judged once at every input: the fit and every value and gradient), ``stabilisers.py``,
``check.py`` (``check_loss``: the steps above, in order), ``report_literal.py`` (the report's
eq. 14 with eq. 15, the negative control ``autograd/report-literal-eq14-eq15``).

Detection power (``CheckResult.detectable``: the relative error of the compared tensor's
largest element sure to fail; measured over every case of refnet and of the ``float32``
fixture, the README's table, asserted by tests/test_detection_power.py with an error of that
size planted): as ``finite_difference`` and ``autograd`` (the README's table).
"""

from verification.checks.loss.check import LossAsModule, check_loss
from verification.checks.loss.formulas import loss_terms, torch_mse
from verification.checks.loss.inputs import LossInput, extreme_inputs, grid_input
from verification.checks.loss.normalisation import (
    Normalisation,
    as_normalisation,
    measure_normalisation,
    measured_reduction,
)
from verification.checks.loss.report_literal import (
    REPORT_LITERAL_ID,
    ReportLiteralMSE,
    check_report_literal_pair,
    report_literal_ratio,
)

__all__ = [
    "REPORT_LITERAL_ID", "ReportLiteralMSE", "torch_mse", "check_loss", "LossAsModule",
    "measured_reduction", "measure_normalisation", "Normalisation", "as_normalisation",
    "loss_terms", "LossInput", "grid_input", "extreme_inputs",
    "check_report_literal_pair", "report_literal_ratio",
]
