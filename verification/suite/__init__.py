"""What runs many checks: the registry of cases per target, the mutation self-test, coverage
while the checks run, and the speed benchmarks."""
