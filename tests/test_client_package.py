"""The npm package is real: `npm pack` in clients/js gives an ESM package with .d.ts types and
a README, without tests; its version is the Python distribution's; and the packed tarball,
installed into a scratch project the way a user installs it (offline, from npm's cache), connects
to a Python server and gets its echo."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conformance_support import JS, ROOT, build_js, node_available

_why = node_available()
if _why is not None and os.environ.get("CI"):
    raise RuntimeError(f"the package tests need Node: {_why}")
pytestmark = pytest.mark.skipif(_why is not None, reason=_why or "")


def npm_version(pep440: str) -> str:
    """The semver spelling of a PEP 440 version: 0.1.0.dev0 -> 0.1.0-dev.0, 1.2.0rc1 ->
    1.2.0-rc.1 (npm refuses the PEP 440 spellings)."""
    m = re.fullmatch(r"(\d+\.\d+\.\d+)(?:(a|b|rc)(\d+))?(?:\.dev(\d+))?", pep440)
    assert m, f"unexpected Python version {pep440!r}"
    base, pre, pre_n, dev = m.groups()
    tags = []
    if pre:
        tags.append(f"{ {'a': 'alpha', 'b': 'beta', 'rc': 'rc'}[pre] }.{pre_n}".replace(" ", ""))
    if dev is not None:
        tags.append(f"dev.{dev}")
    return base + ("-" + ".".join(tags) if tags else "")


def test_npm_version_mapping() -> None:
    assert npm_version("0.1.0.dev0") == "0.1.0-dev.0"
    assert npm_version("1.2.0rc1") == "1.2.0-rc.1"
    assert npm_version("1.2.3") == "1.2.3"


def test_package_version_is_the_python_distributions() -> None:
    from sigma_core import __version__ as python
    package = json.loads((JS / "package.json").read_text())
    lock = json.loads((JS / "package-lock.json").read_text())
    assert package["version"] == npm_version(python)
    assert lock["version"] == lock["packages"][""]["version"] == package["version"]


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    build_js()
    out = tmp_path_factory.mktemp("pack")
    # --ignore-scripts: dist/ was just built (prepack would build it again).
    done = subprocess.run(["npm", "pack", "--ignore-scripts", "--json", "--pack-destination",
                           str(out)], cwd=JS, check=True, capture_output=True, text=True,
                          timeout=120)
    name = str(json.loads(done.stdout)[0]["filename"])
    return out / name


def test_packed_contents(tarball: Path) -> None:
    with tarfile.open(tarball) as tar:
        names = {n.removeprefix("package/") for n in tar.getnames()}
        manifest = json.load(tar.extractfile("package/package.json"))  # type: ignore[arg-type]
    assert manifest["type"] == "module"
    assert manifest["exports"]["."] == {"types": "./dist/src/index.d.ts",
                                        "default": "./dist/src/index.js"}
    for module in ("index", "client", "session", "codec", "errors", "messages"):
        assert f"dist/src/{module}.js" in names
        assert f"dist/src/{module}.d.ts" in names
    assert "README.md" in names
    assert not [n for n in names if "test" in n.split("/")[:2] or n.endswith(".test.js")]
    readme = (JS / "README.md").read_text()
    assert "### In a browser" in readme
    assert "### In Node" in readme


def test_installed_tarball_connects_to_a_python_server(tarball: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "package.json").write_text(json.dumps(
        {"name": "scratch-app", "private": True, "type": "module"}))
    # ws (Node 20 has no global WebSocket) is the copy clients/js installed; flatbuffers comes
    # from npm's cache when it is there (--prefer-offline), else from the registry.
    subprocess.run(["npm", "install", "--prefer-offline", "--no-audit", "--no-fund",
                    "--loglevel=error", str(tarball), f"file:{JS / 'node_modules' / 'ws'}"],
                   cwd=app, check=True, timeout=180)
    (app / "main.js").write_text("""
import { SigmaSocketClient } from "sigmasockets-client";
import WebSocket from "ws";
const client = new SigmaSocketClient({ url: process.argv[2], WebSocket, maxReconnectAttempts: 2 });
const got = new Promise((resolve) => client.on("message", (data, id, ts, topic) =>
  resolve(`${topic} ${new TextDecoder().decode(data)}`)));
await client.connect();
client.send(new TextEncoder().encode("hello from the package"));
console.log(await got);
client.disconnect();
""")
    server = subprocess.Popen([sys.executable, str(JS / "test" / "python_server.py")], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        port = int(line.split()[1])
        done = subprocess.run(["node", "main.js", f"ws://127.0.0.1:{port}/"], cwd=app,
                              capture_output=True, text=True, timeout=30, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "$inbox hello from the package"
    finally:
        server.kill()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()
    shutil.rmtree(app, ignore_errors=True)
