"""Optional dependencies by extra: a missing one names the extra that installs it."""
from __future__ import annotations

import importlib
from types import ModuleType

# What each extra of serving/setup.py provides, for the error message.
EXTRA_PACKAGES = {
    "play": "gymnasium, ale-py and Pillow",
    "server": "Pillow",
    "opencv": "OpenCV",
    "video": "PyAV (FFmpeg with libx264)",
}


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message says which extra to install."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Imports `module` or raises MissingExtraError naming `extra` (e.g. rise-runtime[play])."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs {EXTRA_PACKAGES[extra]} ({error.name or module} is not installed): "
            f"pip install 'rise-runtime[{extra}]'") from None
