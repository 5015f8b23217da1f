"""How a flow param is offered for tuning: a toggle, a slider with its range, or a text box.

One definition for the two places that tune params: the Builder's flow settings and the
Experiments page's sliders and sweeps, so a value the Builder offers is one Experiments can
reach and the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mawb.model import ParamValue

ControlKind = Literal["bool", "int", "float", "text"]


@dataclass(frozen=True)
class ParamControl:
    """How the page offers one flow param: a checkbox, a slider with bounds, or a text box.

    Bounds follow the value's type: a float in 0..1 is a share or score (slider 0..1); other
    numbers get 0..4x their value (at least 0..10 for integers, 0..1 for floats).
    """

    name: str
    kind: ControlKind
    value: ParamValue
    low: float = 0
    high: float = 1
    step: float = 1

    def parse(self, text: str) -> ParamValue:
        """One value typed by the user, in the param's type (ValueError if it is not)."""
        text = text.strip()
        if self.kind == "bool":
            if text.lower() not in {"true", "false"}:
                raise ValueError(f"{self.name} takes true or false, not {text!r}")
            return text.lower() == "true"
        if self.kind == "int":
            return int(text)
        if self.kind == "float":
            return float(text)
        return text

    def sweep_values(self, count: int = 5) -> list[ParamValue]:
        """`count` evenly spread values over the control's range (both values for a flag)."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "text":
            return [self.value]
        spread = [self.low + (self.high - self.low) * i / (count - 1) for i in range(count)]
        if self.kind == "int":
            return sorted({round(v) for v in spread})
        return [round(v, 4) for v in spread]


def param_control(name: str, value: ParamValue) -> ParamControl:
    if isinstance(value, bool):
        return ParamControl(name, "bool", value)
    if isinstance(value, int):
        return ParamControl(name, "int", value, 0, max(10, value * 4), 1)
    if isinstance(value, float):
        if 0 <= value <= 1:
            return ParamControl(name, "float", value, 0.0, 1.0, 0.05)
        high = max(1.0, abs(value) * 4)
        return ParamControl(name, "float", value, min(0.0, value * 4), high, high / 100)
    return ParamControl(name, "text", value)


def parse_sweep_values(control: ParamControl, text: str) -> list[ParamValue]:
    """Comma-separated values in the param's type, duplicates dropped, order kept."""
    values = [control.parse(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError("give at least one value, separated by commas")
    return list(dict.fromkeys(values))
