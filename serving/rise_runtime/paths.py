"""Checks on the paths a command will write, made before any work starts, so bad input ends with a
message that names the path and the fix, and nothing half-written is left behind."""
from __future__ import annotations

import os
import tempfile
from typing import Optional


def _unwritable(path: str, flag: str) -> Optional[str]:
    """Why nothing can be created at `path` (file or folder), or None. The nearest existing folder is
    probed with a real file: permission bits alone say nothing for root or a read-only mount."""
    existing = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(existing):  # the deepest part of the path that exists
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{flag} {path} lies under {existing}, which is a file, not a folder"
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".rise-write-check-"):
            pass
    except OSError as error:
        return (f"{flag} {path} cannot be written: {existing} does not accept new files "
                f"({error.strerror or type(error).__name__}); choose a folder you can write to")
    return None


def file_problem(path: str, flag: str) -> Optional[str]:
    """Why the file `path` (given as `flag`) cannot be written, or None."""
    if os.path.isdir(path):
        return f"{flag} {path} is a folder; give a file path inside it"
    return _unwritable(path, flag)


def folder_problem(path: str, flag: str) -> Optional[str]:
    """Why the folder `path` (given as `flag`) cannot be created or written into, or None."""
    if os.path.exists(path) and not os.path.isdir(path):
        return f"{flag} {path} is a file; give a folder (it is created when missing)"
    return _unwritable(os.path.join(os.path.abspath(path), "probe"), flag)
