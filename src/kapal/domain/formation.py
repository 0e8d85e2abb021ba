"""Dyno sizes and the `ps:scale` argument grammar."""

from __future__ import annotations

import re
from dataclasses import dataclass

from kapal.domain.errors import InvalidParams

# name -> (display name, memory in MB)
DYNO_SIZES: dict[str, tuple[str, int]] = {
    "eco": ("Eco", 512),
    "basic": ("Basic", 512),
    "standard-1x": ("Standard-1X", 512),
    "standard-2x": ("Standard-2X", 1024),
    "performance-m": ("Performance-M", 2560),
    "performance-l": ("Performance-L", 14336),
}
DEFAULT_SIZE = "eco"


@dataclass(frozen=True, slots=True)
class SizeLimits:
    """What a dyno of one size may use: memory above `memory` logs R14, twice it is R15."""

    memory: int  # bytes
    pids: int  # processes and threads
    cpu: int  # CPU weight, 100 per share (cgroup v2's scale)


# Heroku's process limits per size; CPU shares as its table (1x, 2x; performance dynos own
# their cores here they get 4x and 8x the weight).
_PIDS_CPU: dict[str, tuple[int, int]] = {
    "eco": (256, 100),
    "basic": (256, 100),
    "standard-1x": (256, 100),
    "standard-2x": (512, 200),
    "performance-m": (16384, 400),
    "performance-l": (32768, 800),
}


def size_limits(size: str, memory_mb: dict[str, int] | None = None) -> SizeLimits:
    """The limits of a size (an unknown one gets the smallest's); `memory_mb` overrides the
    memory of sizes (KAPAL_DYNO_MEMORY)."""
    key = size if size in DYNO_SIZES else DEFAULT_SIZE
    mb = (memory_mb or {}).get(key, DYNO_SIZES[key][1])
    pids, cpu = _PIDS_CPU[key]
    return SizeLimits(mb * 1024 * 1024, pids, cpu)


def parse_memory_overrides(text: str) -> dict[str, int]:
    """`eco=256,standard-2x=2048` (MB per size) as a mapping; an unknown size or a bad number
    is refused."""
    overrides = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        if not value.strip().isdigit() or int(value) < 16:
            raise InvalidParams(f"Invalid dyno memory {item!r}: expected SIZE=MB, at least 16.")
        overrides[normalise_size(name)] = int(value)
    return overrides


MAX_QUANTITY = 100

_SCALE = re.compile(r"^([\w-]+)([=+-])(\d+)(?::([\w-]+))?$")


def normalise_size(size: str) -> str:
    """Accept `Standard-2X`, `standard-2x`, `2X` style names; return the canonical key."""
    key = size.strip().lower()
    if key in ("1x",):
        key = "standard-1x"
    elif key in ("2x",):
        key = "standard-2x"
    if key not in DYNO_SIZES:
        known = ", ".join(display for display, _ in DYNO_SIZES.values())
        raise InvalidParams(f"Unknown dyno size {size!r}. Known sizes: {known}.")
    return key


def display_size(size: str) -> str:
    return DYNO_SIZES[size][0]


@dataclass(frozen=True)
class ScaleChange:
    type: str
    op: str  # "=", "+" or "-"
    amount: int
    size: str | None

    def apply(self, current: int) -> int:
        if self.op == "=":
            return self.amount
        if self.op == "+":
            return current + self.amount
        return max(0, current - self.amount)


def parse_scale_arg(arg: str) -> ScaleChange:
    """Parse `web=2`, `worker+1`, `web-1`, `web=1:basic`."""
    match = _SCALE.match(arg.strip())
    if match is None:
        raise InvalidParams(
            f"Invalid scale argument {arg!r}: expected TYPE=N, TYPE+N, TYPE-N or TYPE=N:SIZE."
        )
    type_, op, amount, size = match.groups()
    return ScaleChange(type_, op, int(amount), normalise_size(size) if size else None)


def validate_quantity(quantity: int) -> int:
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise InvalidParams(f"Quantity must be between 0 and {MAX_QUANTITY}.")
    return quantity
