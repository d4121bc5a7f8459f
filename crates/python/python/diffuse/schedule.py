"""Noise schedules: beta_k for k = 1..T, and alpha-bar_k = prod(1 - beta_j) for k = 0..T."""

from __future__ import annotations

import numpy as np

from . import _checks
from . import _diffuse


class Schedule:
    """A noise schedule of T steps, as the command line's ``--schedule SPEC --steps T``.

    ``spec`` is ``linear[:START:END]``, ``scaled-linear[:START:END]``, ``sigmoid[:START:END]``,
    ``cosine`` or ``constant:BETA``.

    Attributes (NumPy arrays):
        betas: beta_k for k = 1..T (length T).
        alpha_bar: alpha-bar_k for k = 0..T (length T + 1, alpha_bar[0] = 1).
        sigma: sqrt((1 - alpha-bar_k) / alpha-bar_k), the variance-exploding noise level of
            step k, for k = 0..T.

    >>> s = Schedule.linear(1e-4, 0.02, steps=1000)
    >>> float(s.alpha_bar[0]), len(s.betas)
    (1.0, 1000)
    """

    def __init__(self, spec: str = "linear:1e-4:0.02", steps: int = 1000) -> None:
        if not isinstance(spec, str):
            raise ValueError(f"schedule spec must be a string (got {spec!r})")
        self.spec = spec
        self.steps = _checks.count(steps, "steps")
        self.name, self.betas, self.alpha_bar = _diffuse.schedule_tables(spec, self.steps)
        with np.errstate(divide="ignore"):
            self.sigma = np.sqrt(-np.expm1(np.log(self.alpha_bar)) / self.alpha_bar)

    @classmethod
    def linear(cls, start: float = 1e-4, end: float = 0.02, steps: int = 1000) -> "Schedule":
        """Betas evenly spaced from ``start`` to ``end`` (DDPM)."""
        return cls(f"linear:{float(start)!r}:{float(end)!r}", steps)

    @classmethod
    def scaled_linear(
        cls, start: float = 0.00085, end: float = 0.012, steps: int = 1000
    ) -> "Schedule":
        """sqrt(beta) evenly spaced (Stable Diffusion)."""
        return cls(f"scaled-linear:{float(start)!r}:{float(end)!r}", steps)

    @classmethod
    def sigmoid(cls, start: float = 1e-5, end: float = 1e-2, steps: int = 1000) -> "Schedule":
        """Betas along a sigmoid from ``start`` to ``end``."""
        return cls(f"sigmoid:{float(start)!r}:{float(end)!r}", steps)

    @classmethod
    def cosine(cls, steps: int = 1000) -> "Schedule":
        """Nichol & Dhariwal's cosine alpha-bar."""
        return cls("cosine", steps)

    @classmethod
    def constant(cls, beta: float, steps: int = 1000) -> "Schedule":
        """The same beta at every step (seed 000)."""
        return cls(f"constant:{float(beta)!r}", steps)

    @classmethod
    def parse(cls, spec: str, steps: int = 1000) -> "Schedule":
        """The schedule a spec string names."""
        return cls(spec, steps)

    def __repr__(self) -> str:
        return f"Schedule({self.name!r}, steps={self.steps})"


def as_schedule(s, steps: int = 1000) -> Schedule:
    """A Schedule, or a spec string with ``steps`` steps."""
    if isinstance(s, Schedule):
        return s
    return Schedule(s, steps)


def forward(x0, schedule, t: int, seed: int = 0, closed_form: bool = True, return_noise: bool = False):
    """x_t of the forward process from x_0 (rows of ``x0``) at step ``t`` of ``schedule``.

    In closed form, x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps in one draw (with
    ``return_noise``, also eps, what a network learns to guess); otherwise step by step,
    x_k = sqrt(1 - beta_k) x_(k-1) + sqrt(beta_k) z_k. Row i's noise depends only on the seed
    and i, as on the command line.
    """
    s = as_schedule(schedule)
    x = _checks.points(x0, "x0")
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t <= s.steps:
        raise ValueError(f"t must be a whole step in [0, {s.steps}] (got {t!r})")
    xt, eps = _diffuse.forward_process(x, s.spec, s.steps, int(t), _checks.seed(seed), closed_form)
    if return_noise:
        if eps is None:
            raise ValueError("return_noise needs closed_form=True (the step-by-step chain has no single eps)")
        return xt, eps
    return xt
