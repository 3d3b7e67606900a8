#!/usr/bin/python3
"""Makes a wheel of the ivr package from the build tree's copy (build/bindings/python/ivr).

The wheel holds the Python modules, the stubs, the extension and a copy of libivr.so.0
beside it (the extension's run path is $ORIGIN), so that

    pip install --no-index --target DIR ivr-*.whl && PYTHONPATH=DIR python3 -c "import ivr"

works without the build tree. Uses the interpreter it runs with, pip and setuptools from
the system (no build isolation, no index: nothing is downloaded).

    build_wheel.py --package build/bindings/python/ivr --version 0.1.0 --out DIR [--keep-debug]

The libraries' debug information is stripped from the copies unless --keep-debug.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SETUP_PY = '''\
from setuptools import setup
from setuptools.dist import Distribution


class BinaryDistribution(Distribution):
    """The package carries a compiled extension: a platform wheel, not a pure one."""

    def has_ext_modules(self):
        return True


setup(
    name="ivr",
    version={version!r},
    description="Python bindings of libivr, an embeddable IVR and call-routing engine",
    packages=["ivr"],
    package_data={{"ivr": ["*.so", "*.so.*", "*.pyi", "py.typed"]}},
    python_requires=">={major}.{minor}",
    distclass=BinaryDistribution,
    zip_safe=False,
)
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", required=True, type=Path, help="the build tree's ivr/")
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", required=True, type=Path, help="where the wheel goes")
    parser.add_argument("--keep-debug", action="store_true", help="do not strip debug info")
    args = parser.parse_args()

    package = args.package.resolve()
    if not any(package.glob("_ivr*.so")):
        print(f"build_wheel: {package}: no compiled _ivr module (build ivr_python first)",
              file=sys.stderr)
        return 1
    if not (package / "libivr.so.0").exists():
        print(f"build_wheel: {package}/libivr.so.0: missing", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ivr-wheel-") as tmp:
        stage = Path(tmp) / "src"
        # Symlinks followed: the wheel gets the library itself, not a link into the build tree.
        shutil.copytree(
            package, stage / "ivr", symlinks=False,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        if not args.keep_debug and shutil.which("strip"):
            # Debug information is most of a RelWithDebInfo library's size; a wheel is for
            # running, not for debugging.
            for binary in list((stage / "ivr").glob("*.so")) + [stage / "ivr" / "libivr.so.0"]:
                subprocess.run(["strip", "--strip-debug", str(binary)], check=True)
        (stage / "setup.py").write_text(
            SETUP_PY.format(version=args.version, major=sys.version_info.major,
                            minor=sys.version_info.minor)
        )
        for old in args.out.glob("ivr-*.whl"):
            old.unlink()
        env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
        cmd = [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "--quiet", "--wheel-dir", str(args.out.resolve()), str(stage),
        ]
        result = subprocess.run(cmd, env=env, cwd=tmp)
        if result.returncode != 0:
            print("build_wheel: pip wheel failed", file=sys.stderr)
            return result.returncode
    wheels = sorted(args.out.glob("ivr-*.whl"))
    if not wheels:
        print(f"build_wheel: no wheel in {args.out}", file=sys.stderr)
        return 1
    print(wheels[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
