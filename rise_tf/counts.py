"""Human-friendly counts on the command line ('2M' frames), shared by every CLI; TensorFlow-free."""
from __future__ import annotations

import argparse
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
    if value != int(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    return int(value)
