"""Build the fairsem wheel with libfairsem inside it.

The Python code is plain ctypes, but the library it drives is C: building the
package compiles libfairsem from the C sources the package carries and puts
it next to the code (fairsem/libfairsem.so), as pyzmq and psycopg-binary do.
The wheel is then tagged for the platform, py3-none-<platform>: the library
does not use Python's C API, so one wheel serves every Python 3.

Where the C sources come from: an sdist carries them in csrc/ (src/ and
include/ of the repository, copied by `setup.py sdist`); a checkout uses
../../src and ../../include.  liburcu is not vendored: its headers
(Debian: liburcu-dev) are needed at build time only, because the library uses
its static-inline queue; nothing of liburcu is linked or needed at run time.

Honoured at build time: CC (default cc), CFLAGS (default -O2 -g), LDFLAGS.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
CARRIED = HERE / "csrc"
CHECKOUT = HERE.parent.parent
LIBRARY = "libfairsem.so"
URCU_HEADER = "urcu/wfcqueue.h"


def c_tree() -> Path:
    """The directory holding the library's src/ and include/."""
    for root in (CARRIED, CHECKOUT):
        if (root / "include" / "fairsem.h").is_file() and (root / "src" / "sem.c").is_file():
            return root
    raise SystemExit(
        f"fairsem: the C sources are missing (looked in {CARRIED} and {CHECKOUT}): "
        "build from the repository's bindings/python or from an sdist made by `setup.py sdist`"
    )


def version() -> str:
    """The version of the C library, the one place the project keeps it."""
    header = (c_tree() / "include" / "fairsem.h").read_text()
    parts = [re.search(rf"#define FAIRSEM_VERSION_{p} (\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def check_binding_version(library_version: str) -> str:
    """The binding's structures match one library version: refuse a mismatch."""
    native = (HERE / "fairsem" / "_native.py").read_text()
    binding = re.search(r'^VERSION = "([^"]+)"', native, re.M).group(1)
    if binding != library_version:
        raise SystemExit(f"fairsem: fairsem/_native.py is for libfairsem {binding}, "
                         f"the C sources are {library_version}: update VERSION there")
    return library_version


def compiler() -> list[str]:
    return shlex.split(os.environ.get("CC", "cc"))


def urcu_include_flags() -> list[str]:
    """-I flags for liburcu's headers; fails with the package to install."""
    try:
        flags = subprocess.run(["pkg-config", "--cflags-only-I", "liburcu-cds"],
                               capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        flags = []
    probe = subprocess.run([*compiler(), *flags, "-E", "-x", "c", "-o", os.devnull, "-"],
                           input=f"#define _LGPL_SOURCE 1\n#include <{URCU_HEADER}>\n",
                           capture_output=True, text=True)
    if probe.returncode != 0:
        raise SystemExit(
            f"fairsem: liburcu's headers are missing ({URCU_HEADER} does not compile): install "
            "them (Debian/Ubuntu: apt-get install liburcu-dev; Fedora: userspace-rcu-devel). "
            "They are needed to build only; nothing of liburcu is needed at run time.\n"
            + probe.stderr)
    return flags


def build_library(out: Path, work: Path) -> None:
    """Compile every src/*.c into one shared library, as CMake builds it."""
    root = c_tree()
    cc = compiler()
    cflags = [
        "-std=gnu11", "-fPIC", "-fvisibility=hidden", "-fno-semantic-interposition",
        "-Wall", "-Wextra", f"-I{root / 'include'}", *urcu_include_flags(),
        *shlex.split(os.environ.get("CFLAGS", "-O2 -g")),
    ]
    work.mkdir(parents=True, exist_ok=True)
    sources = sorted((root / "src").glob("*.c"))

    def compile_one(source: Path) -> Path:
        obj = work / (source.stem + ".o")
        subprocess.run([*cc, *cflags, "-c", str(source), "-o", str(obj)], check=True)
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        objects = list(pool.map(compile_one, sources))
    out.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([*cc, "-shared", "-pthread", *map(str, objects), "-o", str(out),
                    *shlex.split(os.environ.get("LDFLAGS", ""))], check=True)


class BuildWithLibrary(build_py):
    """build_py, plus libfairsem compiled into the package directory."""

    def run(self) -> None:
        super().run()
        build_temp = Path(self.get_finalized_command("build").build_temp)
        build_library(Path(self.build_lib) / "fairsem" / LIBRARY, build_temp / "libfairsem")


class SdistWithSources(sdist):
    """An sdist that carries the C sources (csrc/src, csrc/include)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        root = c_tree()
        if root == CARRIED:  # an sdist of an sdist: MANIFEST.in already copied csrc/
            return
        for part, pattern in (("src", "*.[ch]"), ("include", "*.h")):
            target = Path(base_dir) / "csrc" / part
            target.mkdir(parents=True, exist_ok=True)
            for path in sorted((root / part).glob(pattern)):
                shutil.copy2(path, target / path.name)


class DistributionWithLibrary(Distribution):
    """Holds a shared library: installed into platlib, wheel not pure."""

    def has_ext_modules(self) -> bool:
        return True


class PlatformWheel(bdist_wheel):
    """Any Python 3 on this platform: py3-none-<platform>."""

    def get_tag(self) -> tuple[str, str, str]:
        return "py3", "none", super().get_tag()[2]


setup(
    version=check_binding_version(version()),
    distclass=DistributionWithLibrary,
    cmdclass={"build_py": BuildWithLibrary, "sdist": SdistWithSources, "bdist_wheel": PlatformWheel},
)
