"""Step 3 of `srgan data prepare`: seeded train/val/test assignment of unique images.

Splitting happens after de-duplication and by source image, so no picture (and so none of its
crops) is in two splits.
"""

from __future__ import annotations

import numpy as np

from srgan.data.manifest import SPLITS


def split_counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Sizes of the splits for ``n`` images: largest-remainder rounding, and every split with a
    non-zero fraction gets at least one image when there are enough images."""
    raw = [n * f for f in fractions]
    counts = [int(np.floor(r)) for r in raw]
    for i in sorted(range(3), key=lambda i: raw[i] - counts[i], reverse=True)[: n - sum(counts)]:
        counts[i] += 1
    wanted = [i for i in range(3) if fractions[i] > 0]
    if n >= len(wanted):
        for i in wanted:
            if counts[i] == 0:
                donor = max(range(3), key=lambda j: counts[j])
                counts[donor] -= 1
                counts[i] += 1
    return counts


def assign_splits(keys: list[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Seeded assignment of unique image keys to train/val/test (independent of input order)."""
    ordered = sorted(keys)
    order = np.random.default_rng(seed).permutation(len(ordered))
    counts = split_counts(len(ordered), fractions)
    assignment = {}
    position = 0
    for split, count in zip(SPLITS, counts, strict=True):
        for index in order[position:position + count]:
            assignment[ordered[index]] = split
        position += count
    return assignment
