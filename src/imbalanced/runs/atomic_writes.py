"""Atomic file writes: a reader (or a later run) sees the old file or the whole new one, never a part.

Every output of a run goes through `atomic_write`: the content is written to a temporary file with
a unique name in the target's directory (so two processes never share it), flushed to disk, then
renamed over the target with `os.replace` (atomic on POSIX and Windows within one file system). The
temporary file is made 0600 by `tempfile.mkstemp`; it gets the mode a plain `open()` would give
(0666 minus the user's umask, 0644 usually) before the rename, so outputs are readable by whom the
user's umask allows, as any other file they write. A
killed process leaves at most a hidden `.<name>.<random>.tmp` file, never a cut-off output. A write
that fails (a full disk, a folder gone read-only) removes its temporary file, keeps the previous
file, and is one UserError naming the file, not a traceback. Checkpoints take the same road
(runs/checkpoint_io.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from imbalanced.errors import UserError


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """`with atomic_write(path) as f: f.write(...)`: `path` appears complete on success only."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise _not_written(path, error) from None
    try:
        with os.fdopen(descriptor, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _chmod_as_open(temporary)
        os.replace(temporary, path)
        _sync_folder(path.parent)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise _not_written(path, error) from None
        raise


def _current_umask() -> int:
    try:  # Linux shows it without changing it (os.umask would, for a moment, for every thread)
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _chmod_as_open(path: str) -> None:
    """Give `path` the mode `open(path, "w")` would have (mkstemp makes it owner-only)."""
    os.chmod(path, 0o666 & ~_current_umask())


def _not_written(path: Path, error: OSError) -> UserError:
    kept = " (the previous file is kept)" if path.exists() else ""
    return UserError(
        f"cannot write {path}: {error.strerror or error}{kept}; free disk space or choose a "
        "writable place, then run again"
    )


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable (POSIX; Windows cannot open a folder)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def link_atomic(source: str | Path, target: str | Path) -> None:
    """Make `target` a hard link to `source` (one file, two names), replacing `target` atomically.

    Raises OSError where no hard link can be made (another file system, one without them).
    """
    target = Path(target)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(8)}.tmp"
    os.link(source, temporary)
    try:
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(target.parent)


def link_or_copy_atomic(source: str | Path, target: str | Path) -> None:
    """`target` becomes a hard link to `source`, or an atomic copy of it where no hard link can be
    made (another file system, one without hard links); a failure is one UserError naming `target`."""
    try:
        link_atomic(source, target)
    except OSError:
        try:
            copy_verified(source, target)
        except OSError as error:
            raise _not_written(Path(target), error) from None


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
    return Path(path)


def write_with(path: str | Path, writer: Callable[[IO[Any]], Any], binary: bool = False) -> Path:
    """Atomically write what `writer(file)` writes (e.g. `figure.savefig(f, format="png")`)."""
    mode = "wb" if binary else "w"
    kwargs: dict[str, Any] = {} if binary else {"encoding": "utf-8", "newline": ""}
    with atomic_write(path, mode, **kwargs) as handle:
        writer(handle)
    return Path(path)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_verified(source: str | Path, target: str | Path) -> Path:
    """Copy `source` to `target` atomically and check the copy's bytes against the source's.

    A file already at `target` is kept only if it is byte-identical to `source`; anything else
    there (a truncated copy of an earlier attempt, an unrelated file) is replaced.
    """
    source, target = Path(source), Path(target)
    expected = file_digest(source)
    if target.is_file() and file_digest(target) == expected:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle, open(source, "rb") as original:
            shutil.copyfileobj(original, handle, 1 << 20)
            handle.flush()
            os.fsync(handle.fileno())
        if file_digest(temporary) != expected:  # verified before it takes the target's name
            raise OSError(f"the copy of {source} differs from the original (disk full or file changed?)")
        _chmod_as_open(temporary)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return target
