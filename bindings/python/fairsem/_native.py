"""ctypes view of libfairsem: loading the library, its structures and errors."""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
from pathlib import Path

# The library version this binding's structures and prototypes match; it
# must equal include/fairsem.h's (setup.py refuses to build otherwise).
VERSION = "0.1.0"
ENV_LIBRARY = "FAIRSEM_LIBRARY"
PACKAGE_DIR = Path(__file__).resolve().parent
# The library a built package carries (setup.py compiles it into the package).
BUNDLED_LIBRARY = "libfairsem.so"
# Build directories searched, best first, before any other ../../build*.
PREFERRED_BUILD_DIRS = ("build-py", "build", "build-test")

WORK_CONSERVING = 0x1
STRICT_FIFO = 0x2
FORCE = 0x1
IF_IDLE = 0x2
UNLINK_FORCE = 0x1
TENANT_ID_MAX = 63
RULE_NAME_MAX = 31
MAX_SLOTS_LIMIT = 65535
MAX_WAITERS_LIMIT = 4095
WAIT_BUCKETS = 26

ENOTREG = -4001
ERULE = -4009
ESLOT = -4010
EINIT = -4011
EATTACHED = -4012


class Options(ctypes.Structure):
    _fields_ = [
        ("max_slots", ctypes.c_uint),
        ("min_share", ctypes.c_uint),
        ("max_tenants", ctypes.c_uint),
        ("max_waiters", ctypes.c_uint),
        ("max_procs", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("mode", ctypes.c_uint),
        ("share_fn_name", ctypes.c_char_p),
        ("share_fn", ctypes.c_void_p),
        ("share_fn_arg", ctypes.c_void_p),
    ]


class Slot(ctypes.Structure):
    _fields_ = [("tag", ctypes.c_uint64)]


class Stats(ctypes.Structure):
    _fields_ = [
        ("max_slots", ctypes.c_uint),
        ("min_share", ctypes.c_uint),
        ("flags", ctypes.c_uint),
        ("registered_tenants", ctypes.c_uint),
        ("demanding_tenants", ctypes.c_uint),
        ("slots_in_use", ctypes.c_uint),
        ("slots_available", ctypes.c_uint),
        ("waiters", ctypes.c_uint),
        ("attached_procs", ctypes.c_uint),
    ]


class TenantStats(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * (TENANT_ID_MAX + 1)),
        ("held", ctypes.c_uint),
        ("waiting", ctypes.c_uint),
        ("share", ctypes.c_uint),
        ("weight", ctypes.c_uint),
        ("registrations", ctypes.c_uint),
    ]


class Counters(ctypes.Structure):
    _fields_ = [
        ("grants_immediate", ctypes.c_uint64),
        ("grants_waited", ctypes.c_uint64),
        ("timeouts", ctypes.c_uint64),
        ("cancels", ctypes.c_uint64),
        ("reclaimed_slots", ctypes.c_uint64),
        ("reclaimed_requests", ctypes.c_uint64),
        ("held_ns", ctypes.c_uint64),
        ("wait_ns", ctypes.c_uint64),
        ("wait_buckets", ctypes.c_uint64 * WAIT_BUCKETS),
    ]


class TenantCounters(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char * (TENANT_ID_MAX + 1)),
        ("counters", Counters),
        ("oldest_wait_ns", ctypes.c_uint64),
    ]


class ReapReport(ctypes.Structure):
    _fields_ = [
        ("procs", ctypes.c_uint),
        ("slots", ctypes.c_uint),
        ("tickets", ctypes.c_uint),
        ("registrations", ctypes.c_uint),
        ("repaired", ctypes.c_uint),
    ]


SHARE_FN = ctypes.CFUNCTYPE(ctypes.c_uint, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p)

_handle = ctypes.c_void_p
_int = ctypes.c_int
_PROTOTYPES = {
    "fairsem_create": (_int, [ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(_handle)]),
    "fairsem_open": (_int, [ctypes.c_char_p, ctypes.POINTER(Options), ctypes.POINTER(_handle)]),
    "fairsem_open_anonymous": (_int, [ctypes.POINTER(Options), ctypes.POINTER(_handle)]),
    "fairsem_close": (_int, [_handle]),
    "fairsem_unlink": (_int, [ctypes.c_char_p, ctypes.c_uint]),
    "fairsem_tenant_register": (_int, [_handle, ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(_handle)]),
    "fairsem_tenant_unregister": (_int, [_handle, ctypes.c_uint]),
    "fairsem_tenant_free": (_int, [_handle]),
    "fairsem_acquire": (_int, [_handle, ctypes.POINTER(Slot)]),
    "fairsem_try_acquire": (_int, [_handle, ctypes.POINTER(Slot)]),
    "fairsem_acquire_timeout": (_int, [_handle, ctypes.c_uint64, ctypes.POINTER(Slot)]),
    "fairsem_release": (_int, [_handle, Slot]),
    "fairsem_slot_index": (ctypes.c_uint, [Slot]),
    "fairsem_request_start": (_int, [_handle, ctypes.c_void_p, ctypes.POINTER(_handle)]),
    "fairsem_request_result": (_int, [_handle, ctypes.POINTER(Slot)]),
    "fairsem_request_cancel": (_int, [_handle]),
    "fairsem_request_free": (None, [_handle]),
    "fairsem_request_user": (ctypes.c_void_p, [_handle]),
    "fairsem_event_fd": (_int, [_handle]),
    "fairsem_events": (ctypes.c_size_t, [_handle, ctypes.POINTER(_handle), ctypes.c_size_t]),
    "fairsem_stats": (
        _int,
        [_handle, ctypes.POINTER(Stats), ctypes.POINTER(TenantStats), ctypes.c_size_t,
         ctypes.POINTER(ctypes.c_size_t)],
    ),
    "fairsem_counters": (
        _int,
        [_handle, ctypes.POINTER(Counters), ctypes.POINTER(ctypes.c_uint64), ctypes.POINTER(TenantCounters),
         ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)],
    ),
    "fairsem_wait_bucket_bound_ns": (ctypes.c_uint64, [ctypes.c_uint]),
    "fairsem_reap": (_int, [_handle, ctypes.POINTER(ReapReport)]),
    "fairsem_strerror": (ctypes.c_char_p, [_int]),
    "fairsem_err_name": (ctypes.c_char_p, [_int]),
    "fairsem_version": (ctypes.c_char_p, []),
}


def _build_tree_candidates() -> list[Path]:
    """libfairsem.so in the source tree's build directories, best first
    (none unless this package sits in a checkout's bindings/python)."""
    repo = PACKAGE_DIR.parent.parent.parent
    if not (repo / "include" / "fairsem.h").is_file():
        return []
    found = sorted(repo.glob("build*/libfairsem.so"))
    rank = {name: i for i, name in enumerate(PREFERRED_BUILD_DIRS)}
    return sorted(found, key=lambda p: (rank.get(p.parent.name, len(rank)), p.parent.name))


def _candidates() -> list[str]:
    """Where to look, best first: the package's own copy (a wheel's), a
    checkout's build, then the system's (ld.so's search, e.g. the .deb's).
    The package's own copy wins over a system library even of the same
    version: it is the build this code was packaged and tested with."""
    bundled = PACKAGE_DIR / BUNDLED_LIBRARY
    system = ctypes.util.find_library("fairsem")
    return [str(bundled), *map(str, _build_tree_candidates()), *([system] if system else [])]


def _open(path: str) -> ctypes.CDLL:
    # CDLL (not PyDLL) releases the GIL around every call, so a blocking
    # fairsem_acquire stalls only its own thread.
    return ctypes.CDLL(path)


def _library_version(library: ctypes.CDLL) -> str:
    library.fairsem_version.restype = ctypes.c_char_p
    library.fairsem_version.argtypes = []
    return library.fairsem_version().decode()


def find_library() -> tuple[str, ctypes.CDLL]:
    """$FAIRSEM_LIBRARY as given, else the first candidate of VERSION."""
    explicit = os.environ.get(ENV_LIBRARY)
    if explicit:
        try:
            return explicit, _open(explicit)
        except OSError as err:
            raise ImportError(f"fairsem: {ENV_LIBRARY}={explicit} does not load: {err}") from err
    tried = []
    for path in _candidates():
        if "/" in path and not os.path.exists(path):
            tried.append(f"{path}: no such file")
            continue
        try:
            library = _open(path)
        except OSError as err:
            tried.append(f"{path}: {err}")
            continue
        found = _library_version(library)
        if found == VERSION:
            return path, library
        tried.append(f"{path}: version {found}, this package needs {VERSION}")
    raise ImportError(
        f"fairsem: no usable libfairsem {VERSION} for the package in {PACKAGE_DIR}\n  "
        + "\n  ".join(tried)
        + "\nA built fairsem package carries its own libfairsem.so; this one has none that"
        " loads, so it was installed or put on sys.path without being built. Reinstall it from a"
        " wheel, built with a C compiler and liburcu's headers (Debian: liburcu-dev):\n"
        "  /usr/bin/python3 -m pip wheel --no-build-isolation --no-deps <fairsem>/bindings/python\n"
        "  pip install fairsem-*.whl\n"
        f"or install the C library {VERSION} (cmake --install, or the fairsem .deb), or set"
        f" {ENV_LIBRARY} to the path of a libfairsem.so. In a checkout: cmake -S . -B build-py"
        " && cmake --build build-py"
    )


def _declare(library: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(library, name)
        fn.restype = restype
        fn.argtypes = argtypes


LIBRARY_PATH, lib = find_library()
_declare(lib)



def error_name(code: int) -> str:
    return lib.fairsem_err_name(code).decode()


def error_text(code: int) -> str:
    return lib.fairsem_strerror(code).decode()


class FairsemError(OSError):
    """A libfairsem call failed; `code` is the library's negative return value."""

    def __init__(self, code: int, what: str) -> None:
        super().__init__(-code, f"{what}: {error_text(code)} ({error_name(code)})")
        self.code = code


def check(code: int, what: str) -> int:
    if code < 0:
        raise FairsemError(code, what)
    return code


EAGAIN = -errno.EAGAIN
EALREADY = -errno.EALREADY
EBUSY = -errno.EBUSY
ECANCELED = -errno.ECANCELED
EEXIST = -errno.EEXIST
EINVAL = -errno.EINVAL
ENAMETOOLONG = -errno.ENAMETOOLONG
ENOENT = -errno.ENOENT
ETIMEDOUT = -errno.ETIMEDOUT
