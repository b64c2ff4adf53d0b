"""Injected randomness: secrets-backed in production, seeded in tests."""

from __future__ import annotations

import random
import secrets


def system_rng() -> random.Random:
    """A CSPRNG with the random.Random interface (draws, tokens, seeds)."""
    return secrets.SystemRandom()


def seeded_rng(seed: int) -> random.Random:
    """A reproducible generator for tests; never used outside them."""
    return random.Random(seed)
