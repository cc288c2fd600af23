"""Config schemas shared by several experiments: the homework's two data sets and Newton's stopping rule.

Their values live in `configs/data/logistic.yaml`, `configs/data/linear.yaml` and each experiment's YAML.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax

from gradlab.problems import linreg, logistic
from gradlab.runner.config import at_least, finite, increasing_pair, positive, seed


@dataclass
class LogisticDataConfig:
    """Problem 8 (iv): n_per_class points from N(mean0, std^2) labelled 0, as many from N(mean1, std^2) labelled 1."""

    n_per_class: int = at_least(1)
    mean0: float = finite()
    mean1: float = finite()
    std: float = positive()
    seed: int = seed()

    def sample(self) -> tuple[jax.Array, jax.Array]:
        return logistic.sample_data(jax.random.key(self.seed), self.n_per_class, self.mean0, self.mean1, self.std)


@dataclass
class LinearDataConfig:
    """y = intercept + slope x + noise_sigma Norm(0, 1) with x uniform on x_range (Problems 2, 3, 7)."""

    n_points: int = at_least(2)
    intercept: float = finite()
    slope: float = finite()
    noise_sigma: float = positive()
    x_range: list[float] = increasing_pair()
    seed: int = seed()

    def sample(self) -> tuple[jax.Array, jax.Array]:
        return linreg.sample_data(jax.random.key(self.seed), self.n_points, self.intercept, self.slope,
                                  self.noise_sigma, *self.x_range)


@dataclass
class NewtonConfig:
    """Newton's method stops when the gradient is below tol, or after max_iter iterations."""

    tol: float = positive()
    max_iter: int = at_least(1)
