"""Inside one environment, before the user's code: the filesystem and import path of Lambda.

On Lambda (docs/protocols.md §8.1) the function's code is read-only at the task root, ``/tmp``
is the one writable path and belongs to one execution environment, and the import path holds
the task root, the layers and the runtime's own directory (boto3, botocore) only. This module
gives a forked environment the same view, with Linux mount namespaces:

1. ``unshare(CLONE_NEWNS)`` (plus ``CLONE_NEWUSER`` when not root, where the kernel allows
   unprivileged user namespaces), every mount made private so nothing leaks back to the host;
2. a ``tmpfs`` of the function's ``EphemeralStorage`` size (default 512 MB) is mounted at a
   staging directory, the host paths that must stay visible under ``/tmp`` (the code when it
   lives there, the emulator's CA bundle, the shared session store) are bind-mounted into
   it, and it is moved onto ``/tmp``: each environment has a ``/tmp`` of its own;
3. the task root is bind-mounted read-only onto itself, so writing there fails with
   ``OSError: [Errno 30] Read-only file system`` as on Lambda; writable exceptions (the
   session store's folder) are bound before the read-only remount; the rest of the import
   path (the function's dependencies, the runtime's packages, what they link to on this
   machine) is bound read-only too, as ``/var/task`` and ``/var/runtime`` are;
4. :func:`restrict_imports` leaves on ``sys.path`` only the task root, the directories the
   emulator built for the function (its declared dependencies, what the runtime provides)
   and the standard library; modules of anything else already in the process are dropped.

The task root keeps its host path (``LAMBDA_TASK_ROOT`` names it), so tracebacks point at
your files; code that hard-codes ``/var/task`` is not emulated.

Standard library only, no ``dataclasses``: the zygote imports this module. The mount calls
go through ``ctypes`` (``os.unshare`` exists from Python 3.12 only) and cost well under a
millisecond per environment (``bench/isolation_cost.py``).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "DEFAULT_TMP_MB",
    "STAGE_NAME",
    "SandboxError",
    "enter",
    "foreign_modules",
    "load_libc",
    "probe",
    "restrict_imports",
]

#: Lambda's default ``/tmp`` size (docs/protocols.md §8.1).
DEFAULT_TMP_MB = 512
#: The staging mount point for a new ``/tmp`` (a directory of the host's ``/tmp``; each
#: environment mounts its own tmpfs there, in its own namespace, then moves it onto /tmp).
STAGE_NAME = ".warmline-sandbox"

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_MOVE = 8192
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_libc: Any = None


class SandboxError(OSError):
    """The kernel refused a step of the isolation (the message names the step)."""


def load_libc() -> None:
    """Resolve libc's entry points now (the zygote does, once, for every environment)."""
    _c()


def _c() -> Any:
    global _libc
    if _libc is None:
        libc = ctypes.CDLL(None, use_errno=True)  # the interpreter's own libc
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
        ]
        libc.unshare.argtypes = [ctypes.c_int]
        _libc = libc
    return _libc


def _check(result: int, step: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(errno, f"{step}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    _check(
        _c().mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            flags,
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _unshare() -> None:
    """A mount namespace of our own (in a user namespace of our own when not root)."""
    if os.geteuid() == 0:
        _check(_c().unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        return
    uid, gid = os.geteuid(), os.getegid()
    _check(_c().unshare(_CLONE_NEWUSER | _CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS)")
    # The same ids inside as outside: files keep their owners.
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _bind(source: str, target: str, *, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.exists(target):
            os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o600))
    _mount(source, target, None, _MS_BIND | _MS_REC)
    if read_only:
        _mount(None, target, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)


def enter(policy: Mapping[str, Any]) -> None:
    """Isolate this process's filesystem view as a Lambda environment's.

    Args:
        policy: ``task_root`` (read-only), ``tmp_mb`` (the private /tmp's size),
            ``stage`` (an existing empty directory under the host's /tmp), ``read_only``
            (host paths that stay visible and cannot be written: the import path, the
            runtime's files, the CA bundle) and ``writable`` (the session store's folder).

    Raises:
        SandboxError: the kernel refused a step; the process is then half set up and must
            not run user code (the caller exits).
    """
    task_root = os.path.realpath(str(policy["task_root"]))
    stage = str(policy["stage"])
    tmp_mb = int(policy.get("tmp_mb") or DEFAULT_TMP_MB)
    read_only = [os.path.realpath(p) for p in policy.get("read_only", ()) if os.path.exists(p)]
    writable = [os.path.realpath(p) for p in policy.get("writable", ()) if os.path.exists(p)]
    tmp = os.path.realpath("/tmp")
    # A read-only path that holds /tmp (a Python installed at /) is left as it is.
    read_only = [p for p in read_only if not _under(tmp, p)]
    _unshare()
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    _mount("tmpfs", stage, "tmpfs", _MS_NOSUID | _MS_NODEV, f"size={tmp_mb}m,mode=1777")
    # What lives under /tmp is bound into the new tmpfs at the same relative place, each
    # folder before the ones inside it (the function's dependencies are read-only inside
    # the writable state folder, which is inside the task root).
    in_tmp = [(task_root, False)] if _under(task_root, tmp) else []
    in_tmp += [(p, False) for p in writable if _under(p, tmp)]
    in_tmp += [(p, True) for p in read_only if _under(p, tmp)]
    for path, ro in sorted(in_tmp, key=lambda item: item[0].count("/")):
        _bind(path, stage + path[len(tmp) :], read_only=ro)
    if _under(task_root, tmp):
        _mount(None, stage + task_root[len(tmp) :], None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)
    _mount(stage, tmp, None, _MS_MOVE)
    if not _under(task_root, tmp):
        _mount(task_root, task_root, None, _MS_BIND | _MS_REC)
        for path in writable:
            if _under(path, task_root) and path != task_root:
                _bind(path, path, read_only=False)
        _mount(None, task_root, None, _MS_BIND | _MS_REMOUNT | _MS_RDONLY)
    # The rest of the import path (dependencies, the runtime's packages and what they link
    # to), read-only as /var/task and /var/runtime are; after the task root, so that those
    # inside it are bound on top of it.
    outside = [p for p in read_only if not _under(p, tmp)]
    for path in sorted(_outermost(outside, writable), key=lambda p: p.count("/")):
        _bind(path, path, read_only=True)


def _outermost(read_only: list[str], writable: list[str]) -> list[str]:
    """``read_only`` without the paths a read-only bind of another already covers (a
    virtualenv's site-packages inside it): one that lies inside a writable folder inside
    the other stays, as the function's dependencies inside the state folder do."""
    kept = []
    for path in dict.fromkeys(read_only):
        covered = any(
            other != path
            and _under(path, other)
            and not any(_under(w, other) and _under(path, w) for w in writable)
            for other in read_only
        )
        if not covered:
            kept.append(path)
    return kept


def probe(stage: str) -> str | None:
    """Whether :func:`enter` works here: None, or the reason it does not.

    Forks a child that tries the namespace and a tmpfs (so the caller's own view is
    untouched). Call it only from a single-threaded process (the zygote does).
    """
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            _unshare()
            _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
            _mount("tmpfs", stage, "tmpfs", _MS_NOSUID | _MS_NODEV, "size=1m")
        except OSError as exc:
            code = exc.errno or 1
        except BaseException:
            code = 1
        os._exit(min(code, 255))
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return None
    return f"the kernel refused a mount namespace ({os.strerror(code) if code > 0 else code})"


def restrict_imports(task_root: str, extra: Sequence[str], retired: Iterable[str]) -> None:
    """Leave only the task root, ``extra`` and the standard library importable.

    Args:
        task_root: first on ``sys.path``.
        extra: the function's dependency and runtime directories, in order.
        retired: names of modules already loaded from elsewhere (site-packages, warmline's
            source tree); they leave ``sys.modules`` so an import finds them only again
            through the path left here.
    """
    stdlib = [p for p in sys.path if p and _is_stdlib(p)]
    sys.path[:] = [task_root, *extra, *stdlib]
    sys.path_importer_cache.clear()
    # Finders that site-packages installed (setuptools' distutils shim, editable installs)
    # go too: only the interpreter's own finders remain.
    sys.meta_path[:] = [f for f in sys.meta_path if _is_builtin_finder(f)]
    for name in retired:
        sys.modules.pop(name, None)


def _is_stdlib(path: str) -> bool:
    if "site-packages" in path or "dist-packages" in path:
        return False
    prefixes = {sys.base_prefix, sys.base_exec_prefix}
    return any(_under(os.path.realpath(path), os.path.realpath(p)) for p in prefixes)


def _is_builtin_finder(finder: object) -> bool:
    module = getattr(finder, "__module__", None) or type(finder).__module__
    return module in ("_frozen_importlib", "_frozen_importlib_external", "zipimport", "builtins")


def foreign_modules() -> list[str]:
    """Modules loaded from outside the standard library (to retire in an environment)."""
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if path and not _is_stdlib(os.path.dirname(path)):
            names.append(name)
    return names
