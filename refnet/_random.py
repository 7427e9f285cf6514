"""Random draws with one generator for the whole tensor, or one generator per replica.

``generator`` is ``None`` (torch's global generator), a ``torch.Generator``, or a sequence of
``R`` generators, one per replica. With a sequence, replica r's numbers come from generator r
alone and equal those of a single (replica-free) draw from that generator, which is what makes
replica r of a batched run equal a single run with replica r's seed. Numbers are drawn on the
generator's device and moved afterwards, so a CPU generator gives the same numbers on any device.
"""

import torch

__all__ = []


def is_generator_sequence(generator):
    """True when ``generator`` is a list or tuple of per-replica generators."""
    return isinstance(generator, (list, tuple))


def draw(sampler, shape, *, generator, replicas, dtype, device):
    """Draw ``sampler(shape)`` (``torch.rand`` or ``torch.randn``), with a replica axis if asked.

    Args:
        sampler: ``torch.rand`` or ``torch.randn``.
        shape: the shape of one replica's draw.
        generator: ``None``, a generator, or a sequence of ``replicas`` generators.
        replicas: ``None`` for no replica axis, else the number of replicas R.
        dtype: dtype of the result.
        device: device of the result.

    Returns:
        A tensor shaped ``shape``, or ``[R, *shape]`` with replicas.
    """
    if is_generator_sequence(generator):
        if replicas is None or len(generator) != replicas:
            raise ValueError(
                f"expected one generator per replica ({replicas} replicas), "
                f"got a sequence of {len(generator)} generators"
            )
        draws = [sampler(shape, generator=g, dtype=dtype, device=g.device) for g in generator]
        return torch.stack(draws).to(device)
    full_shape = tuple(shape) if replicas is None else (replicas, *shape)
    draw_device = device if generator is None else generator.device
    return sampler(full_shape, generator=generator, dtype=dtype, device=draw_device).to(device)


def permutations(n, *, generator, replicas, device):
    """Random orderings of ``range(n)``: shape ``[n]``, or ``[R, n]`` with replicas.

    Each ordering is the argsort of ``n`` float64 uniforms (ties have probability about
    n² · 2⁻⁵³), so single and per-replica draws use the same recipe and agree exactly.
    """
    keys = draw(torch.rand, (n,), generator=generator, replicas=replicas,
                dtype=torch.float64, device=device)
    return keys.argsort(dim=-1)


def generators(seeds, device="cpu"):
    """One seeded ``torch.Generator`` per seed, for per-replica randomness.

    Args:
        seeds: a sequence of ints, one per replica.
        device: the device the generators draw on.

    Returns:
        A list of generators; pass it as ``generator=`` to ``Linear``, ``disk_dataset`` and
        ``train`` so that replica r matches a single run seeded with ``seeds[r]``.
    """
    return [torch.Generator(device=device).manual_seed(int(seed)) for seed in seeds]
