"""Human-friendly numbers on the command line ('2M' frames, '1/64' updates per step), shared by
every CLI; TensorFlow-free. Both refuse inf and NaN, which pass most range checks and then loop
forever or poison training."""
from __future__ import annotations

import argparse
import math
import re

_COUNT = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([kKmMgG]?)\s*$")


def parse_count(text: str) -> int:
    """'2M' -> 2_000_000, '500k' -> 500_000, '1e6' -> 1_000_000, '123' -> 123."""
    match = _COUNT.match(text)
    if match:
        scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[match.group(2).lower()]
        value = float(match.group(1)) * scale
    else:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a count (examples: 2M, 500k, 100000)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite count (examples: 2M, 500k, 100000)")
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)


_FRACTION = re.compile(r"^\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*/\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


def parse_real(text: str) -> float:
    """'0.25' -> 0.25, '1e-4' -> 0.0001, '1/64' -> 0.015625; inf and NaN are refused."""
    match = _FRACTION.match(text)
    try:
        value = float(match.group(1)) / float(match.group(2)) if match else float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (examples: 0.25, 1e-4, 1/64)") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value
