"""Build: pyproject.toml holds the metadata; this file only adds the mypyc-compiled hot modules.

The modules in COMPILED are type-checked by mypy and compiled to C extensions by mypyc when a C compiler and
the Python headers are there. Without them, or with ``INTEROP_PURE_PYTHON=1`` in the environment, the
package installs as pure Python (same behaviour, slower) and this script prints a warning saying why
(pip shows a build's output with ``-v``). A mypyc error in a listed module fails the build: it is a bug to
fix, not a reason to fall back silently.
An editable install (``pip install -e``) puts the ``.so`` files beside the sources: an extension module is
imported before a ``.py`` of the same name, so after editing a compiled module re-run the install
(``make test`` does it: the Makefile's install stamp depends on these files; tests/conftest.py refuses to
run on a stale build). An editable install deletes the in-tree ``.so`` files it does not rebuild (all of
them in pure mode), so none is left shadowing its source.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent

# Modules compiled with mypyc (paths or globs relative to this file). The Makefile reads this list too, so
# keep one quoted path per line. Only modules measured to pay and whose tests pass compiled belong here:
# the sync planner with its helpers and FHIR output (bench.bench_sync: 1.6x plans/s, 1.3x Bundles/s) and the
# ER7 parser with the whole mapping package (bench.bench_hl7v2: 1.7x msg/s). interop/store/indexing.py was
# measured and left out: index_tuples 1.45x alone, but process_bundle and MLLP ingest gained under 3%.
# A module listed here must stay within what mypyc compiles: no monkeypatching its functions, no
# interpreted subclasses of its classes, annotations that hold at run time (mypyc checks them).
COMPILED = [
    "interop/sync/plan.py",
    "interop/sync/regimen.py",
    "interop/sync/anchor.py",
    "interop/sync/shortfill.py",
    "interop/sync/eligibility.py",
    "interop/sync/renewal.py",
    "interop/sync/package.py",
    "interop/sync/settings.py",
    "interop/sync/fhir_out.py",
    "adapters/hl7v2/er7.py",
    "adapters/hl7v2/mapping/*.py",
]


def _warn(reason: str) -> None:
    bar = "=" * 78
    print(f"\n{bar}\nmedsync-interop: installing as PURE PYTHON (no mypyc-compiled modules): {reason}.\n"
          f"Everything works; the sync planner and HL7 v2 convert run slower.\n{bar}\n", file=sys.stderr)


def _sources() -> list[str]:
    found: list[str] = []
    for pattern in COMPILED:
        matches = sorted(glob.glob(pattern, root_dir=HERE))
        if not matches:
            raise SystemExit(f"setup.py: COMPILED entry {pattern!r} matches no file")
        found.extend(m for m in matches if m not in found)
    return found


def _compiler_problem() -> str | None:
    """Why a C extension cannot be built here (None when it can): compile a file that includes Python.h."""
    from setuptools._distutils.ccompiler import new_compiler
    from setuptools._distutils.errors import CCompilerError, DistutilsError
    from setuptools._distutils.sysconfig import customize_compiler

    compiler = new_compiler()
    customize_compiler(compiler)
    executable = getattr(compiler, "compiler_so", None) or ["cc"]
    if shutil.which(executable[0]) is None:
        return f"no C compiler ({executable[0]!r} not found)"
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp, "probe.c")
        probe.write_text("#include <Python.h>\nint probe(void) { return Py_IsInitialized(); }\n")
        try:
            compiler.compile([str(probe)], output_dir=tmp, include_dirs=[sysconfig.get_paths()["include"]])
        except (CCompilerError, DistutilsError, OSError, subprocess.SubprocessError) as exc:
            return f"the C compiler cannot build against the Python headers ({exc})"
    return None


def _builds_code() -> bool:
    """Whether this run builds code: pip also runs setup.py for metadata alone (egg_info, dist_info), where
    mypycify's type-check and C generation would be wasted work (it tripled the time of an install)."""
    return any(arg in _BUILD_COMMANDS for arg in sys.argv[1:])


_BUILD_COMMANDS = frozenset(
    {"build", "build_ext", "bdist_wheel", "editable_wheel", "develop", "install", "bdist", "bdist_egg"}
)


def _ext_modules() -> list[object]:
    if not _builds_code():
        return []
    if os.environ.get("INTEROP_PURE_PYTHON", "").strip() not in ("", "0"):
        _warn("INTEROP_PURE_PYTHON is set")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypy (which ships mypyc) is not installed in the build environment")
        return []
    problem = _compiler_problem()
    if problem:
        _warn(problem)
        return []
    os.chdir(HERE)  # mypycify takes paths relative to the project and reads [tool.mypy] from pyproject.toml
    return list(mypycify(_sources(), opt_level="3", debug_level="0"))


class BuildPy(build_py):  # type: ignore[misc]  # setuptools ships no type hints here
    """build_py that, in an editable install, deletes in-tree extension modules this build will not rebuild."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            keep = {self.distribution.get_command_obj("build_ext").get_ext_filename(e.name)
                    for e in self.distribution.ext_modules or []}
            suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
            stale = [p for p in HERE.glob(f"*{suffix}") if p.name not in keep]
            for package in ("interop", "adapters"):
                stale += [p for p in (HERE / package).rglob(f"*{suffix}")
                          if str(p.relative_to(HERE)) not in keep]
            for path in stale:
                print(f"removing stale compiled module {path.relative_to(HERE)}", file=sys.stderr)
                path.unlink()


setup(ext_modules=_ext_modules(), cmdclass={"build_py": BuildPy})
