"""Atomic saves: temporary file in the same folder, fsync, os.replace, fsync of the folder.

A crash or a full disk at any moment leaves either the old file or the new one, never a torn one. The new
file gets the permissions a plain `open(path, "w")` would give it (0666 less the umask), or keeps those of
the file it replaces: a preset saved for students stays readable by them.

Symbolic links are followed, as editors do: saving onto a link writes the file the link (or a chain of links)
finally names, and the link stays a link. The temporary file is made beside that target, in its folder (the same
filesystem, so the rename stays atomic), and it replaces the target; the folder of the link is not touched. A
dangling link gets the file it names created (what a plain `open(path, "w")` does), when that file's folder
exists; otherwise the save is refused, naming the target. A link loop (or a chain of more than 40 links) is
refused. So is a path that is, or whose links lead to, something other than a regular file (a folder, a device,
a FIFO, a socket): a save never replaces one. Refusals are OSErrors with an errno (ELOOP, ENOENT, EISDIR,
EINVAL) and a message that says what is wrong; nothing is written then.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from pathlib import Path

MAX_LINKS = 40  # links followed at most (Linux's own limit for a path)


def _temporary(folder: Path, name: str) -> tuple[int, str]:
    """A new file beside the target, created exclusively with mode 0666 (the kernel applies the umask)."""
    for _ in range(100):
        tmp = str(folder / f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


def save_target(path: str | os.PathLike[str]) -> Path:
    """The file a save to `path` writes: `path` itself, or the file its symbolic links finally name (a relative link
    is taken from the folder the link is in). Raises OSError for a link loop, a dangling link whose folder does not
    exist, and a target that exists but is not a regular file."""
    given = Path(path)
    target = given
    for _ in range(MAX_LINKS + 1):
        try:
            st = os.lstat(target)
        except FileNotFoundError:  # a new file (or the one a dangling link names): its folder must exist
            folder = target.parent if str(target.parent) else Path(".")
            if target != given and not folder.is_dir():
                raise OSError(errno.ENOENT, f"it is a symbolic link to {target}, whose folder does not exist; "
                                            f"nothing was written") from None
            return target
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(target)
            target = Path(link) if os.path.isabs(link) else target.parent / link
            continue
        if stat.S_ISREG(st.st_mode):
            return target
        what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file (a device, a FIFO or a socket)"
        via = f" (its symbolic link leads to {target})" if target != given else ""
        raise OSError(errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL,
                      f"it is {what}{via}; nothing was written")
    raise OSError(errno.ELOOP, f"it is a symbolic link that never reaches a file (a loop, or more than {MAX_LINKS} "
                               f"links); nothing was written")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically; through its symbolic links to the file they name (the module's text)."""
    target = save_target(path)
    folder = target.parent if str(target.parent) else Path(".")
    try:
        keep_mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        keep_mode = None
    fd, tmp = _temporary(folder, target.name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if keep_mode is not None:
                os.fchmod(fh.fileno(), keep_mode)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse opening folders
        return
    try:
        os.fsync(dir_fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(dir_fd)
