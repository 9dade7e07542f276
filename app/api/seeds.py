"""Seeds derived from an initial seed in call order (the Sampler SDK's `initial_rng_seed`): a
program that samples in the same order gets the same seeds, hence the same text, on every run."""

from __future__ import annotations

import hashlib

MAX_SEED = 2**32 - 1


def derived_seed(initial: int, call: int) -> int:
    """The seed of the `call`-th sample (0-based) after `initial`: a hash of both, so neighbouring
    calls and neighbouring initial seeds give unrelated seeds."""
    digest = hashlib.sha256(f"chain-studio-seed:{initial}:{call}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % MAX_SEED
