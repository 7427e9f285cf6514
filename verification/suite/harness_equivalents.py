"""The ledger of the harness mutation self-test: the survivors, each with why it may survive.

``EQUIVALENT`` maps a mutant's key (``harness_mutants.Mutant.key``: module, enclosing
function, operator, original fragment, occurrence) to the reason no test can catch it, one
line a reviewer can check against the code: the edit changes no status and no detection power
(a batch size, a sentence of a diagnosis, a tolerance term that is never the larger one).
A survivor that does weaken a check is no entry here: it needs a test that kills it.
``python -m verification.suite.harness_mutation`` fails on a survivor not listed; it does not
run the listed ones unless asked (``--recheck``).
"""

__all__ = ["EQUIVALENT", "UNPINNED"]

EQUIVALENT = {
    "verification.checks.dropout:<module>:×10:100#0":
        "the statistical input's row width: 100 000 units in rows of 1000 instead of 100, the "
        "same count for the binomial tests",
    "verification.checks.dropout:_eval_checks:×10:4#0":
        "widens only the match that adds the 'stale training mask' sentence to an "
        "eval-backward check that already fails (that check is exact either way)",
    "verification.checks.finite_difference.protocol_path:<module>:×10:256#0":
        "perturbed values per forward call: a batch size, the same differences",
    "verification.checks.finite_difference.replica_path:<module>:×10:2 ** 24#0":
        "the twin forward's chunk size in numbers: memory per call, the same values",
    "verification.checks.finite_difference.steps:tolerances:×10:2#0":
        "rtol·|dL/dθ| = 2γu·|dL/dθ| is eps·|dL/dθ|/(5S) of atol = 10γuS/eps: ×10 adds "
        "2e-6·|dL/dθ|/S (float64) or 2 %·|dL/dθ|/S (float32) to a tolerance, within the "
        "README's detection figures, which atol sets (the stated-figure tests pass)",
    "verification.checks.kink:<module>:×10:2.0 ** -26#0":
        "δ, where the one-sided slopes are read: their slack is measured (the move between δ "
        "and 2δ), so any δ far inside the pieces (the nearest other candidate is 1 away) "
        "finds the same kinks and slopes",
    "verification.checks.loss.inputs:<module>:×10:800.0#0":
        "the logit gap of the extreme cross-entropy inputs: 8000 is as far past exp's "
        "overflow (709.8) as 800, where an unstabilised softmax returns NaN alike",
    "verification.checks.trajectory:<module>:×10:1e-8#0":
        "Adam's ε, given alike to the target's Adam and to torch's twin; the update's "
        "round-off bound C_k does not depend on it",
    "verification.suite.conformance:<module>:×10:20#0":
        "the trajectories' steps: 200 instead of 20 checks more steps, each against its own "
        "derived bound (a slower run, not a weaker one)",
    "verification.suite.conformance:<module>:×10:5#0":
        "--quick's trajectory steps: 50 instead of 5 checks more steps, never fewer (a "
        "slower quick run, not a weaker one)",
    "verification.checks.dropout:_eval_checks:÷10:4#0":
        "narrows only the match that adds the 'stale training mask' sentence to an "
        "eval-backward check that already fails (that check is exact either way)",
    "verification.checks.finite_difference.replica_path:<module>:÷10:2 ** 24#0":
        "the twin forward's chunk size in numbers: more calls of less memory, the same values",
    "verification.checks.finite_difference.steps:tolerances:÷10:2#0":
        "rtol = 2γu is never the larger term (the ×10 entry's algebra): a smaller one changes "
        "no tolerance by more than 2e-7 of itself",
    "verification.checks.finite_difference.steps:tolerances:÷10:8#0":
        "8·T, the truncation term, is 3.4 % of atol at float32's step (8·1e-4/6 against "
        "10·64·2⁻²⁴/1e-2, in units of S) and 2e-5 of it at float64's: ÷10 lowers a tolerance "
        "by at most 3.1 %, inside the margin of the pinned float32 test (worst ratio 0.84)",
    "verification.checks.kink:<module>:÷10:2.0 ** -26#0":
        "δ ÷ 10 ≈ 1.5e-9·max(1, |at|): the one-sided slopes are read by autograd on torch's "
        "float64 reference (spacing 2.2e-16 at 1), still far inside the pieces, and their "
        "slack is measured between δ and 2δ, so the same kinks and slopes are found",
    "verification.checks.trajectory:<module>:÷10:1e-8#0":
        "Adam's ε, given alike to the target's Adam and to torch's twin; the update's "
        "round-off bound C_k does not depend on it",
    "verification.checks.loss.inputs:<module>:÷10:1e18#0":
        "the large regression inputs' magnitude M: they probe an intermediate that overflows "
        "(exp, cosh, a fourth power: past 89 in float32, 1e77 in float64 for d⁴), which 1e17 "
        "reaches as 1e18 does; only a square scaled by 75–7500 before its reduction would tell "
        "them apart, and no loss of the vocabulary computes one",
    "verification.checks.finite_difference.comparison:_compare_target:drop abs:numeric.abs()#0":
        "the kink test's threshold atol + rtol·numeric instead of rtol·|numeric|: they differ "
        "by 2·rtol·|numeric|, under 2e-7 of atol in float64 (the ÷10 rtol entry's algebra: "
        "rtol is never the larger term), so the same elements are left out",
    "verification.checks.finite_difference.replica_path:_target_losses:max↔min:"
    "max(1, chunk_elements // twin.per_replica)#0":
        "one replica per twin forward call instead of as many as fit: more calls of less "
        "memory, the same values (the chunk-size entries)",
    "verification.checks.kink:_sides:drop abs:abs(at)#0":
        "δ at a negative candidate at < −1 becomes 2⁻²⁶ instead of 2⁻²⁶·|at|: the candidates "
        "are 0, ±1 and declared numeric options (|at| ≤ 20 in torch's defaults), where δ is "
        "still far inside the pieces and above float64's spacing at |at| (the ÷10 δ entry)",
    "verification.checks.kink:find_kinks:drop abs:abs(at)#0":
        "the jump test's δ at a candidate at < −1 becomes 2⁻²⁶ instead of 2⁻²⁶·|at|: "
        "|f(at + δ) − f(at − δ)| and its bound 2δ·steepest scale alike, so a kink "
        "(δ·|L + R|) stays under it either way, and a jump J exceeds it once J > "
        "4δ·steepest + 1e-6·|f(at)| at most, δ ≤ 1.5e-8·|at|: the two δ differ only on jumps "
        "under 1e-6·|f(at)| + 6e-8·|at|·steepest, no jump of torch's activations (Hardshrink's "
        "λ, Threshold's |value − threshold|)",
    "verification.checks.kink:_candidates:max↔min:slack_left.max()#0":
        "every element of x is at, so an element-wise reference gives every element the same "
        "slack (torch's activations have scalar options; PReLU's per-channel weights have "
        "straight sides, slack 0): the slack's min is its max",
    "verification.checks.kink:_candidates:max↔min:slack_right.max()#0":
        "the same as slack_left's: every element of x is at, so the slack is the same at every "
        "element (per-channel PReLU weights: straight sides, slack 0), its min its max",
    "verification.suite.conformance:_loss_inputs.binary:flip:"
    "torch.rand(batch, outputs, generator=generator) > 0.5#0":
        "every 0/1 target of the BCE and logit losses becomes its complement: another draw of "
        "the same fair coin (as another seed), each input keeping its mix of 0s and 1s",
    "verification.checks.trajectory:_loss_tolerance:drop abs:loss.abs()#0":
        "|L| = L for every loss the training case trains with: its normalisation k > 0 (a "
        "negated loss fails its normalisation and is not trained), so L ≥ 0 (given c < 0 "
        "directly, the float32 Adam case moves from 9.4e-6 to 9.6e-6 of its tolerance)",
}

_FEWER_MAXIMA = ("max|θ| read from fewer values: every max|θ_j| is within Σ|Δθ| of the "
                 "others, which the movement term (n·M ≥ c) already charges, so the tolerance "
                 "stays a sound bound, stricter by at most c·Σ|Δθ|; the rounding-up optimisers "
                 "move too little for it to matter (0.18 either way)")
"""The reason of the optimiser's five mutants that read its largest |θ| from fewer values."""

UNPINNED = {
    "verification.checks.trajectory:_loss_tolerance:max↔min:scale.max()#0":
        "the loss's atol from the smallest replica's |L| + Σ|dL/dy|·E_y instead of the "
        "largest's (it matters with replicas alone): correct targets' worst error/tolerance "
        "of the loss goes from 4.5e-5 to 5.5e-5 (float32 SGD), 4.0e-5 to 6.0e-5 (Adam), 0 in "
        "float64; the loss's first-order bound is far above its round-off",
    "verification.checks.optimizer:<module>:÷10:8#0":
        "OPERATIONS, the update's roundings (Adam's eight): charged to the movement n·M·Σ|Δθ|, "
        "which no correct optimiser fills (each rounds far fewer of them the same way); the "
        "rounding-up optimisers reach 0.18 of the whole tolerance through its θ term",
    "verification.checks.optimizer:<module>:÷10:2#0":
        "DECAY_ROUNDINGS: c = 1 + 2 → 1.2 with a weight decay, 2.5 times stricter; the "
        "rounding-up optimisers with a decay reach 0.06 of the tolerance (0.15 with c = 1.2)",
    "verification.checks.optimizer:_amplification:max↔min:max(settings.get(\"momentum\", "
    "0.0), settings.get(\"betas\", (0.0,))[0])#0":
        "the state's memory M = 1/(1 − ρ) at the smaller of μ and β₁ (M = 1 for SGD with "
        "momentum): the movement term, which no correct optimiser fills (momentum cases reach "
        "0.03 of the tolerance rounding upward)",
    "verification.checks.optimizer:_check:max↔min:previous.abs().max()#0":
        _FEWER_MAXIMA,
    "verification.checks.optimizer:_check:drop abs:previous.abs()#0":
        _FEWER_MAXIMA,
    "verification.checks.optimizer:_check:max↔min:max(largest, float(value.abs().max()))#0":
        _FEWER_MAXIMA,
    "verification.checks.optimizer:_check:max↔min:value.abs().max()#0":
        _FEWER_MAXIMA,
    "verification.checks.optimizer:_check:drop abs:value.abs()#0":
        _FEWER_MAXIMA,
    "verification.checks.optimizer:_check:max↔min:(value - previous).abs().max()#0":
        "the movement Σ min|Δθ_j| instead of Σ max|Δθ_j|: the movement term, which no correct "
        "optimiser fills (the θ term sets the worst ratios, 0.18 rounding upward)",
    "verification.checks.optimizer:_check:drop abs:(value - previous).abs()#0":
        "the movement Σ max(Δθ_j) signed: at most Σ max|Δθ_j|, the movement term no correct "
        "optimiser fills (the θ term sets the worst ratios, 0.18 rounding upward)",
}
"""Survivors that only make a worst-case round-off tolerance stricter, where no correct target
comes within ten times of the part they change, with the correct targets' worst
error/tolerance. They change detection power, so they are no equivalents; they are kept sound
rather than tight, reported apart (``unpinned``), and fail nothing. A stress regime that
brings a correct target near would turn each into a test, as the rounding-up optimisers did
for θ's own roundings (``THETA_ROUNDINGS``)."""
