"""Request bodies to raw screens: PNG (Pillow, the `server` extra) or raw RGB bytes with their shape.

Every way a body can be wrong ends in FrameError with the HTTP status that fits and a message that
says what would work; nothing here trusts a size the client claims before checking it.
"""
from __future__ import annotations

import io
from typing import Optional

import numpy as np

from rise_runtime.extras import require

PNG = "image/png"
RAW = "application/octet-stream"
SHAPE_HEADER = "x-frame-shape"


class FrameError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def media_type(content_type: Optional[str]) -> str:
    """'Image/PNG; charset=x' -> 'image/png' (media types are case-insensitive)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_png(body: bytes, max_pixels: int) -> np.ndarray:
    """PNG bytes -> uint8 RGB [H, W, 3]. The pixel count is checked from the header, before decoding."""
    image_module = require("PIL.Image", "server", "decoding PNG frames")
    try:
        with image_module.open(io.BytesIO(body), formats=["PNG"]) as image:
            if image.width * image.height > max_pixels:
                raise FrameError(413, f"a {image.width}x{image.height} PNG exceeds the server's limit of "
                                      f"{max_pixels:,} pixels")
            return np.asarray(image.convert("RGB"))
    except FrameError:
        raise
    except image_module.DecompressionBombError:  # Pillow's own check, for claims far past ours
        raise FrameError(413, f"the PNG claims more than the server's limit of {max_pixels:,} pixels") from None
    except Exception:  # Pillow raises many types for truncated, corrupt or hostile files
        raise FrameError(400, "the body is not a decodable PNG") from None


def decode_raw(body: bytes, shape_header: Optional[str], max_pixels: int) -> np.ndarray:
    """Raw uint8 RGB bytes, row-major, with header X-Frame-Shape: H,W,3 (one screen) or 2,H,W,3 (the
    step's last two screens, the earlier first: what the contract max-pools)."""
    if not shape_header:
        raise FrameError(400, "raw frames need a header X-Frame-Shape: H,W,3 (e.g. 210,160,3), or 2,H,W,3 for "
                              "the step's last two screens")
    try:
        shape = tuple(int(part) for part in shape_header.split(","))
    except ValueError:
        raise FrameError(400, f"X-Frame-Shape {shape_header[:40]!r} is not H,W,3 or 2,H,W,3") from None
    screens = shape[0] if len(shape) == 4 else 1
    if len(shape) not in (3, 4) or shape[-1] != 3 or min(shape) < 1 or screens not in (1, 2):
        raise FrameError(400, f"X-Frame-Shape must be H,W,3 (one screen) or 2,H,W,3 (two) with H, W >= 1 (RGB "
                              f"uint8), got {shape_header[:40]!r}")
    height, width = shape[-3], shape[-2]
    if height * width > max_pixels:
        raise FrameError(413, f"a {height}x{width} frame exceeds the server's limit of {max_pixels:,} pixels")
    expected = screens * height * width * 3
    if len(body) != expected:
        raise FrameError(400, f"the body has {len(body)} bytes; X-Frame-Shape {shape_header[:40]} needs {expected}")
    return np.frombuffer(body, np.uint8).reshape(shape)


def decode_frame(body: bytes, content_type: Optional[str], shape_header: Optional[str], max_pixels: int) -> np.ndarray:
    kind = media_type(content_type)
    if kind not in (PNG, RAW):
        raise FrameError(415, f"Content-Type {kind or '(none)'!r} is not supported; send {PNG}, or {RAW} with "
                              f"X-Frame-Shape: H,W,3")
    if not body:
        raise FrameError(400, f"the body is empty; send one screen as {PNG} or raw RGB bytes")
    return decode_png(body, max_pixels) if kind == PNG else decode_raw(body, shape_header, max_pixels)
