"""Step timings: how long one prefill step and one decode step take, per tensor-parallel
size, for one workload (prompt and output length). The adapter (pdgen.predict.aic) fills
them from AIConfigurator; ``--steps FILE`` reads them from a file (the ``steps`` object of
`pdgen plan --predict --format json`), e.g. timings measured on the user's own hardware."""

from __future__ import annotations

import bisect
import json
from dataclasses import dataclass, field

from pdgen.errors import PdgenError


@dataclass(frozen=True)
class Curve:
    """Milliseconds per step against batch size, interpolated linearly between the points and
    extended along the last segment beyond them."""
    batch: tuple[int, ...]
    ms: tuple[float, ...]

    def at(self, batch: float) -> float:
        xs, ys = self.batch, self.ms
        if batch <= xs[0]:  # a step is never quicker than with the fewest sequences measured
            return ys[0]
        if len(xs) == 1:
            return ys[0] * batch / xs[0]
        i = max(1, min(bisect.bisect_left(xs, batch), len(xs) - 1))
        return ys[i - 1] + (ys[i] - ys[i - 1]) * (batch - xs[i - 1]) / (xs[i] - xs[i - 1])


@dataclass(frozen=True)
class Steps:
    """``prefill[tp]``: ms for one prefill step of ``batch`` prompts of ``isl`` tokens;
    ``decode[tp]``: mean ms of one decode step (time per output token) with ``batch``
    sequences, over the output (context from isl to isl + osl). ``source`` names where the
    figures come from; ``system`` the hardware description they were computed for."""
    isl: int
    osl: int
    source: str
    system: dict
    prefill: dict[int, Curve] = field(default_factory=dict)
    decode: dict[int, Curve] = field(default_factory=dict)

    def prefill_ms(self, tp: int, batch: float = 1) -> float:
        return self._curve(self.prefill, "prefill", tp).at(batch)

    def tpot_ms(self, tp: int, batch: float) -> float:
        return self._curve(self.decode, "decode", tp).at(max(batch, 1.0))

    def _curve(self, curves: dict[int, Curve], role: str, tp: int) -> Curve:
        if tp not in curves:
            raise PdgenError(f"step timings ({self.source}) have no {role} figures for tensor parallelism {tp} "
                             f"(they have {sorted(curves) or 'none'})")
        return curves[tp]

    def check_workload(self, isl: int, osl: int) -> None:
        """Timings computed for another prompt or output length would mislead: refuse them."""
        if (self.isl, self.osl) != (isl, osl):
            raise PdgenError(f"the step timings are for {self.isl} prompt and {self.osl} output tokens, and the "
                             f"workload has {isl} and {osl}: compute them for this workload")

    def to_dict(self) -> dict:
        return {"isl": self.isl, "osl": self.osl, "source": self.source, "system": self.system,
                "prefill": {str(tp): {"batch": list(c.batch), "ms": list(c.ms)}
                            for tp, c in sorted(self.prefill.items())},
                "decode": {str(tp): {"batch": list(c.batch), "ms": list(c.ms)}
                           for tp, c in sorted(self.decode.items())}}

    @classmethod
    def from_dict(cls, d: dict) -> Steps:
        def curves(part: dict) -> dict[int, Curve]:
            out = {}
            for tp, c in part.items():
                pts = sorted(zip(c["batch"], c["ms"], strict=True))
                if not pts or any(b < 1 or ms < 0 for b, ms in pts):
                    raise ValueError(f"tensor parallelism {tp}: batch sizes >= 1 and milliseconds >= 0 expected")
                out[int(tp)] = Curve(tuple(int(b) for b, _ in pts), tuple(float(ms) for _, ms in pts))
            return out
        return cls(isl=int(d["isl"]), osl=int(d["osl"]), source=str(d["source"]), system=dict(d.get("system", {})),
                   prefill=curves(d["prefill"]), decode=curves(d["decode"]))


def load(path: str) -> Steps:
    """A steps file: the ``steps`` object of `pdgen plan --predict --format json`, or the
    whole output (its ``prediction.steps`` is taken)."""
    try:
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
        if isinstance(d, list):
            d = d[0]
        d = d.get("prediction", d)
        return Steps.from_dict(d.get("steps", d))
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise PdgenError(f"cannot read step timings from {path}: {exc!s} (expected the 'steps' object of "
                         "`pdgen plan --predict --format json`)") from None
