"""Checks that compare one component of a framework with a ground truth: central finite
differences, torch.autograd twins, torch.optim trajectories, Dropout statistics, losses,
gradient accumulation and side effects. Each returns ``CheckResult``s and never raises on a
mismatch."""
