"""Release packaging: ``python -m build`` gives an sdist and a wheel compiled for this platform
(mypyc modules and the C helper inside); the wheel installs into a fresh virtualenv whose PATH
has no C compiler, and a client talks to a server from it, with sigma_ops serving /metrics.
The version is written once (sigma_core/_version.py, which pyproject.toml reads); the built
packages' metadata and everything else carry it from there.

Slow (one compile of sigma_core, a minute or more): built once per session.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

def written_version() -> str:
    """The one place the version is written: sigma_core/_version.py, read as text (``VERSION =
    "..."``), not imported."""
    text = (ROOT / "sigma_core" / "_version.py").read_text()
    found = re.findall(r'^VERSION = "([^"]+)"$', text, re.MULTILINE)
    assert len(found) == 1, "sigma_core/_version.py must assign VERSION once, as a literal"
    return str(found[0])


VERSION = written_version()

CLIENT_SERVER = r'''
import asyncio, sys
import sigma_core.hub
from sigma_asyncio import ServerOptions, SigmaSocketClient, SigmaSocketServer
from sigma_ops import VERSION, Ops

async def main() -> None:
    ops = Ops(node="wheel")
    server = SigmaSocketServer(ops.server_options(ServerOptions(host="127.0.0.1", port=0)))
    ops.attach(server)
    server.on("message", lambda client, data, topic: server.send_to_client(client, data[::-1]))
    async with server:
        async with SigmaSocketClient(f"ws://127.0.0.1:{server.port}/") as client:
            client.send(b"wheel")
            async for message in client:
                print("echo", message.data.decode())
                break
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        body = await reader.read()
        writer.close()
        print("metrics", b"sigmasockets_messages_received_total 1.0" in body)
    print("compiled", sigma_core.hub.__file__.endswith(".so"))
    print("version", VERSION)
    print("module", sigma_core.hub.__file__)

asyncio.run(main())
'''


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
                           capture_output=True, text=True, timeout=900, check=False)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return out


def test_sdist_and_compiled_wheel(dist: Path) -> None:
    (sdist,) = dist.glob("*.tar.gz")
    (wheel,) = dist.glob("*.whl")
    assert sdist.name == f"sigmasockets-{VERSION}.tar.gz"
    # A platform wheel: compiled, not py3-none-any.
    assert re.fullmatch(rf"sigmasockets-{re.escape(VERSION)}-cp3\d+-cp3\d+-linux_\w+\.whl",
                        wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for module in ("hub", "codec/__init__", "codec/_readers", "connection", "websocket",
                   "_speedups"):
        assert any(re.fullmatch(rf"sigma_core/{module}\.cpython-.*\.so", n) for n in names)
    for name in ("sigma_ops/dashboard/dashboard.js", "sigma_ops/dashboard/index.html",
                 "sigma_core/py.typed", "sigma_ops/py.typed"):
        assert name in names
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    for name in ("setup.py", "sigma_core/_speedups.c", "sigma_ops/dashboard/dashboard.js",
                 "README.md"):
        assert f"sigmasockets-{VERSION}/{name}" in members


def test_wheel_installs_and_runs_without_a_compiler(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items()
           if k not in ("CC", "CXX", "PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("SIGMA")}
    env["PATH"] = str(bin_dir)  # nothing else: no gcc, no cc
    for compiler in ("gcc", "cc", "clang", "tcc"):
        assert shutil.which(compiler, path=env["PATH"]) is None
    install = subprocess.run([str(bin_dir / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", f"{wheel}[ops]"],
                             capture_output=True, text=True, env=env, timeout=300, check=False)
    assert install.returncode == 0, install.stdout + install.stderr
    run = subprocess.run([str(bin_dir / "python"), "-c", CLIENT_SERVER], cwd=tmp_path,
                         capture_output=True, text=True, env=env, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["echo"] == "leehw"
    assert lines["metrics"] == "True"
    assert lines["compiled"] == "True"
    assert lines["version"] == VERSION
    assert lines["module"].startswith(str(venv))  # the wheel's, not this checkout's


def test_version_is_written_once() -> None:
    from importlib.metadata import version

    import sigma_core
    from sigma_ops import VERSION as OPS_VERSION

    assert OPS_VERSION == sigma_core.__version__ == VERSION
    # pyproject.toml does not write it: it reads the constant (the installed metadata agrees).
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "sigma_core._version.VERSION"}
    assert version("sigmasockets") == VERSION
    # The deploy files name the image by the release the version stands for.
    release = re.sub(r"\.dev\d+$|(a|b|rc)\d+$", "", VERSION)
    for path in (ROOT / "deploy" / "compose.yaml", ROOT / "deploy" / "k8s" / "deployment.yaml"):
        tags = re.findall(r"image: sigmasockets-chat:(\S+)", path.read_text())
        assert tags, path
        assert set(tags) == {release}, path
    python_sources = [p for d in ("sigma_core", "sigma_asyncio", "sigma_trio", "sigma_ops")
                      for p in (ROOT / d).rglob("*.py") if "_wire" not in p.parts]
    for path in python_sources:
        if path != ROOT / "sigma_core" / "_version.py":
            assert VERSION not in path.read_text(), f"{path} writes the version itself"


def test_every_extra_that_compiles_in_place_installs_the_build_requirements() -> None:
    """scripts/chat.sh and scripts/test.sh compile sigma_core with ``python setup.py build_ext
    --inplace`` in .venv, not in pip's isolated build environment: the extra each installs must
    bring every build requirement (a new venv's own setuptools cannot read pyproject.toml's SPDX
    license, and a clean clone's first ``bash scripts/chat.sh`` failed so)."""
    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    runtime = [Requirement(r) for r in project["project"]["dependencies"]]
    for extra in ("chat", "test"):
        installed = {r.name: r for r in [*runtime, *map(
            Requirement, project["project"]["optional-dependencies"][extra])]}
        for text in project["build-system"]["requires"]:
            need = Requirement(text)
            assert need.name in installed, (extra, text)
            got = installed[need.name]
            assert got.specifier == need.specifier, (extra, str(got), text)
