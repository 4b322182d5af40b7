r"""The AC feasibility cut the DSO's validator hands to its master (seed 001 (A12)).

.. math::
    E_t + \sum_k g_k (x_k - \hat x_k) \le -m

with :math:`E_t` the slot's violation (p.u.), :math:`g_k = \partial E_t/\partial x_k` in
p.u. per kW (kvar) and :math:`m \ge 0` an optional safety margin. It is written only in the
master's transaction variables of slot t, named by keys, never by network element:

* ``("p_ex", mg)``, ``("q_ex", mg)``: microgrid mg's exchange (+ into the feeder);
* ``("q_svc", s)``: SVC number s's reactive output;
* ``("curtail", bus)``: load curtailment at a bus (kW, at the load's power factor).

The cut is a first-order model of the AC violation around :math:`\hat x`, not a globally
valid inequality: the loop validates again after the master moves.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A master variable of one slot: (kind, microgrid name | SVC index | bus id).
VariableKey = tuple[str, str | int]


@dataclass(frozen=True)
class ACFeasibilityCut:
    """``e_pu + Σ coef·(x − x̂) ≤ −margin_pu`` on slot ``slot``'s transaction variables.

    Attributes:
        slot: Slot index in the window.
        e_pu: Violation ``E_t`` at ``x̂`` (p.u.; for a failed power flow, the voltage
            rise asked for, see :class:`simulator.validation.ac_cuts.ACCutGenerator`).
        coefficients: ``(key, dE/dx)`` pairs, p.u. per kW or kvar.
        x_hat: ``(key, x̂)`` pairs, same keys and order as ``coefficients``.
        margin_pu: Safety margin ``m >= 0``.
        source: ``violation`` (AC power flow solved) or ``pf_failed``.

    """

    slot: int
    e_pu: float
    coefficients: tuple[tuple[VariableKey, float], ...]
    x_hat: tuple[tuple[VariableKey, float], ...]
    margin_pu: float = 0.0
    source: str = "violation"

    def row(self) -> tuple[list[VariableKey], list[float], float]:
        """The cut as ``Σ a_k x_k ≤ b``, scaled so that the largest ``|a_k|`` is 1.

        The scaling keeps the row well conditioned for the LP solver (the raw
        coefficients are ~1e-5 p.u./kW); it does not change the inequality.
        """
        keys = [k for k, _ in self.coefficients]
        coefs = [c for _, c in self.coefficients]
        rhs = sum(c * x for c, (_, x) in zip(coefs, self.x_hat, strict=True))
        rhs -= self.e_pu + self.margin_pu
        scale = max((abs(c) for c in coefs), default=0.0)
        if scale == 0.0:
            return [], [], rhs
        return keys, [c / scale for c in coefs], rhs / scale

    def predicted_violation(self, x: dict[VariableKey, float]) -> float:
        """The cut's first-order model of ``E_t`` at ``x`` (missing keys stay at x̂)."""
        hat = dict(self.x_hat)
        return self.e_pu + sum(c * (x.get(k, hat[k]) - hat[k]) for k, c in self.coefficients)
