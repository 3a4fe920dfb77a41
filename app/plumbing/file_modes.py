"""Owner-only files: the instance folder 0700, everything in it 0600.

Why: the instance folder holds the generated secret key (which signs every widget
handle and staff session) and, by default, the SQLite database with its claims.
Either, read by another account on the machine, undoes the rest of our security.
Files are created with their final mode (never briefly readable by others, whatever
the umask), and anything found looser at start-up is tightened. No Flask in here:
`config` uses it before an app exists.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from pathlib import Path

PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600

logger = logging.getLogger("passid.files")


def private_directory(path: Path) -> None:
    """Create `path` (and parents) if missing; the folder itself ends up 0700."""
    path.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
    tighten(path, PRIVATE_DIRECTORY)


def write_private_file_once(path: Path, text: str) -> None:
    """Write `text` to a new 0600 file; an existing file keeps its content and is tightened to 0600.

    The text is written to a temporary file first and linked into place, which fails if `path`
    exists: two processes starting at once never overwrite each other's secret, and neither can
    read the file between its creation and its content (an empty key signs anything).
    """
    if path.exists():
        tighten(path, PRIVATE_FILE)
        return
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:  # mkstemp creates it 0600
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.link(temporary, path)
    except FileExistsError:
        tighten(path, PRIVATE_FILE)
    finally:
        os.unlink(temporary)


def create_private_file(path: Path) -> None:
    """Make sure `path` exists as a 0600 file, creating it empty if missing (never truncating)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))
    tighten(path, PRIVATE_FILE)


def tighten_instance_dir(path: Path) -> None:
    """At start-up: the folder 0700, every folder below it 0700 and every file 0600, if it exists."""
    if not path.is_dir():
        return
    tighten(path, PRIVATE_DIRECTORY)
    for root, directories, files in os.walk(path):
        for name in directories:
            tighten(Path(root, name), PRIVATE_DIRECTORY)
        for name in files:
            tighten(Path(root, name), PRIVATE_FILE)


def tighten(path: Path, mode: int) -> None:
    """Remove any permission beyond `mode`; a file we may not change is reported, not fatal.

    Symbolic links are left alone: chmod would follow them out of the folder.
    """
    try:
        current = path.lstat()
        if stat.S_ISLNK(current.st_mode) or stat.S_IMODE(current.st_mode) & ~mode == 0:
            return
        path.chmod(stat.S_IMODE(current.st_mode) & mode)
    except FileNotFoundError:
        return
    except OSError as error:
        logger.warning("could not make %s owner-only: %s", path, error.strerror)
