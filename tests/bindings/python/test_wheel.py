"""The wheel: built from the build tree's package, installed with pip into a directory of
its own, imported from there (with nothing of the build tree on the path), and used."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path


import ivr

BUILD_WHEEL = os.environ.get(
    "IVR_PY_BUILD_WHEEL", str(Path(__file__).resolve().parents[3] / "bindings/python/build_wheel.py")
)

SMOKE = r"""
import sys, ivr
assert ivr.__file__.startswith(sys.argv[1]), ivr.__file__
with ivr.Engine(sip_port=0) as engine:
    @engine.verb("crm.lookup")
    def lookup(request):
        return None
    engine.load_flow({"flow": "f", "start": "a", "nodes": {"a": {"verb": "crm.lookup"}}})
    engine.start()
    assert engine.sip_port > 0
print("wheel ok", ivr.__version__)
"""


def test_wheel_installs_and_imports_without_the_build_tree(tmp_path):
    package = Path(ivr.__file__).parent
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, BUILD_WHEEL, "--package", str(package), "--version", ivr.__version__,
         "--out", str(out)],
        check=True, timeout=120,
    )
    wheels = list(out.glob("ivr-*.whl"))
    assert len(wheels) == 1, wheels
    wheel = wheels[0]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{tag}-{tag}-linux_" in wheel.name
    names = zipfile.ZipFile(wheel).namelist()
    for member in ("ivr/__init__.py", "ivr/_ivr.pyi", "ivr/py.typed", "ivr/libivr.so.0"):
        assert member in names, names
    assert any(n.startswith("ivr/_ivr.") and n.endswith(".so") for n in names)

    target = tmp_path / "site"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_ROOT_USER_ACTION="ignore")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps", "--quiet",
         "--target", str(target), str(wheel)],
        check=True, timeout=120, env=env,
    )
    assert (target / "ivr" / "libivr.so.0").is_file()
    assert not (target / "ivr" / "libivr.so.0").is_symlink()
    env["PYTHONPATH"] = str(target)
    result = subprocess.run(
        [sys.executable, "-c", SMOKE, str(target)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wheel ok")


def test_build_wheel_refuses_an_unbuilt_package(tmp_path):
    (tmp_path / "ivr").mkdir()
    result = subprocess.run(
        [sys.executable, BUILD_WHEEL, "--package", str(tmp_path / "ivr"), "--version", "0",
         "--out", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0 and "_ivr" in result.stderr
