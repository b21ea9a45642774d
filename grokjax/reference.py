"""A number of the paper (:class:`Reference`) and how close a measurement must come to it
(:class:`Tolerance`); the numbers themselves and their protocols are :mod:`grokjax.paper`'s.
"""

from __future__ import annotations

import dataclasses
import math

__all__ = ["PAPER_SEEDS", "Reference", "Tolerance"]

PAPER_SEEDS = 12  # seeds per cell that make a paper-scale number


@dataclasses.dataclass(frozen=True)
class Tolerance:
    """How close a measurement must be to count as reproducing a reference value.

    kind: ``rel`` (|m - v| <= tol·|v|), ``abs`` (|m - v| <= tol), ``min`` (m >= tol), ``max``
    (m <= tol), ``range`` (lo - tol <= m <= hi + tol), ``factor`` (v/tol <= m <= v·tol) or
    ``band`` (lo <= m <= hi: a prediction's 95 % band).
    """

    kind: str
    tol: float

    def check(self, measured: float, ref: "Reference") -> bool:
        m = float(measured)
        if self.kind == "rel":
            return abs(m - ref.value) <= self.tol * abs(ref.value)
        if self.kind == "abs":
            return abs(m - ref.value) <= self.tol
        if self.kind == "min":
            return m >= self.tol
        if self.kind == "max":
            return m <= self.tol
        if self.kind == "range":
            return ref.lo - self.tol <= m <= ref.hi + self.tol
        if self.kind == "factor":
            return ref.value / self.tol <= m <= ref.value * self.tol
        if self.kind == "band":
            return ref.lo <= m <= ref.hi
        raise ValueError(f"unknown tolerance kind {self.kind!r}")

    def describe(self, ref: "Reference") -> str:
        if self.kind == "rel":
            return f"within {100 * self.tol:g} %"
        if self.kind == "abs":
            return f"within ±{self.tol:g}"
        if self.kind == "min":
            return f"≥ {self.tol:g}"
        if self.kind == "max":
            return f"≤ {_fmt_scaled(self.tol, ref.scale)}{ref.unit_suffix}"
        if self.kind == "range":
            lo, hi = ref.lo - self.tol, ref.hi + self.tol
            return f"in [{lo:.4g}, {hi:.4g}]"
        if self.kind == "factor":
            return f"within a factor {self.tol:g}"
        if self.kind == "band":
            return f"inside the 95 % band [{ref.lo:.4g}, {ref.hi:.4g}]"
        raise ValueError(f"unknown tolerance kind {self.kind!r}")


def _fmt_scaled(v: float, scale: float) -> str:
    return f"{v * scale:g}"


@dataclasses.dataclass(frozen=True)
class Reference:
    """One number of the paper.

    value: the central value (for ``range`` references the midpoint of [lo, hi]).
    measure: how the number is measured in the runs: the name of a candidate function in
        :data:`grokjax.candidates.MEASURES` (e.g. ``alpha_shared``: one alpha with an intercept
        per p; ``free_wc``: W_c of the free lanes of each setting).
    lo, hi: the paper's interval (a CI, or a stated range), when it gives one.
    protocol: settings the measurement needs (keys are lane/config fields: model, p, frac, lr,
        wd, d, hidden, t_int, layernorm); a value that is a tuple means "any of these".
    select: which lanes or cells of a matching run the number is computed from: ``rho`` (one
        cell), ``rho_min`` / ``rho_max`` (the rho range of a fit), ``min_rho`` (at least this
        many distinct rho in that range), ``min_p`` (at least this many p), ``lrs`` (these lr),
        ``group`` (the parameter group whose norm at T_grok is measured; ``total``: the whole
        model's).
    requires_p: only runs at the protocol's p are candidates (a run at another p is "not run"
        for this number rather than "not comparable").
    needs: the design the measurement needs, in words (shown when no run provides it).
    experiments: the grokjax experiments meant to produce it (names registered in
        :mod:`grokjax.registry` by ``experiments.catalog``).
    scale, unit: display only (CV is shown in % with scale 100).
    paper_scale: the tighter tolerance of a measurement on at least PAPER_SEEDS seeds per cell.
    pooled: for a fit across p or lr, the axis of :data:`grokjax.runs.POOL_AXES` along which
        runs of one design that were run as separate jobs are pooled (:func:`grokjax.runs.pool`)
        and measured as one, beside each run alone (every number is also measured on runs
        split by seed, pooled).
    """

    key: str
    quantity: str
    value: float
    tolerance: Tolerance
    source: str
    measure: str
    protocol: dict = dataclasses.field(default_factory=dict)
    lo: float | None = None
    hi: float | None = None
    select: dict = dataclasses.field(default_factory=dict)
    requires_p: bool = False
    needs: str = ""
    experiments: tuple = ()
    scale: float = 1.0
    unit: str = ""
    paper_scale: Tolerance | None = None
    pooled: str = ""
    text_value: str = ""  # the paper's text, where ``value`` comes from its released data

    @property
    def basis(self) -> str:
        """Where ``value`` comes from: the paper's text or its code release's per-seed data."""
        return "released data" if self.text_value else "text"

    def tolerance_at(self, seeds: int | None) -> Tolerance:
        """The tolerance for a measurement on ``seeds`` seeds per cell."""
        if self.paper_scale is not None and (seeds or 0) >= PAPER_SEEDS:
            return self.paper_scale
        return self.tolerance

    @property
    def unit_suffix(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def text(self) -> str:
        """The paper's value as it is quoted in the report."""
        s = self.scale
        if self.lo is not None and self.tolerance.kind in ("range", "max", "min"):
            return f"{self.lo * s:g}–{self.hi * s:g}{self.unit_suffix}"
        base = f"{self.value * s:.6g}{self.unit_suffix}"
        if self.lo is not None and self.hi is not None:
            base += f" [{self.lo * s:.4g}, {self.hi * s:.4g}]"
        if self.text_value:
            base += f" (released data; text: {self.text_value})"
        return base

    def passes(self, measured: float, seeds: int | None = None) -> bool:
        return bool(math.isfinite(measured) and self.tolerance_at(seeds).check(measured, self))

    def rel_diff(self, measured: float) -> float:
        return (float(measured) - self.value) / abs(self.value)
