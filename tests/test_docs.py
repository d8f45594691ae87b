"""The docs run, so they cannot drift from the code; the docs site builds and its API reference
is complete.

Examples: every fenced ``python`` block of README.md and docs/**/*.md runs. A block whose first
line is ``# not run: <reason>`` is skipped, and must say why (a server that runs until
interrupted, the shape of an adapter loop). Blocks in docs/tutorials/ use real sockets and event
loops: each runs in a fresh interpreter with warnings as errors and a deadline; the others run
in a fresh namespace in this process.

The browser tutorial's ``js`` blocks run with Node against the tutorial's own Python server,
started on a free port: Node 20 gets the two things a browser gives a page's script (``WebSocket``,
from the ``ws`` package, and ``location``), and what a script prints must be the ``text`` block
after it.

The site: ``mkdocs build --strict`` (scripts/test.sh builds it once and passes it as
``SIGMA_DOCS_SITE``; run alone, this file builds it into a temporary directory). Its API
reference must render every name in the ``__all__`` of every public module of the documented
packages, and nothing else: no other module-level name, nothing private.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import queue
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<code>.*?)^```\n?", re.MULTILINE | re.DOTALL)
TUTORIALS = ROOT / "docs" / "tutorials"
#: The first line of the browser tutorial's server block (run by the JS test, not on its own).
JS_SERVER_MARK = "# server.py: serves until interrupted; tests/test_docs.py starts it"
#: Packages whose public modules the API reference must render, with their reference page.
PACKAGES = {
    "sigma_asyncio": "docs/reference/sigma_asyncio.md",
    "sigma_trio": "docs/reference/sigma_trio.md",
    "sigma_core": "docs/reference/sigma_core.md",
    "sigma_core.testing": "docs/reference/sigma_core.testing.md",
    "sigma_asgi": "docs/reference/sigma_asgi.md",
    "sigma_ops": "docs/reference/sigma_ops.md",
    "sigma_redis": "docs/reference/sigma_redis.md",
    "sigma_auth": "docs/reference/sigma_auth.md",
}
EXAMPLE_DEADLINE = 60.0


def fenced(doc: Path) -> Iterator[tuple[int, str, str, int]]:
    """(index among the doc's blocks, language, code, end offset) of each fenced block."""
    text = doc.read_text(encoding="utf-8")
    for i, match in enumerate(FENCE.finditer(text)):
        yield i + 1, match["lang"], match["code"], match.end()


def blocks() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for i, lang, code, _ in fenced(doc):
            if lang == "python" and not code.startswith(("# not run", JS_SERVER_MARK)):
                found.append((f"{doc.relative_to(ROOT)}#{i}", code))
    return found


@pytest.mark.parametrize(("where", "code"), blocks(), ids=[w for w, _ in blocks()])
def test_doc_example_runs(where: str, code: str) -> None:
    if where.startswith("docs/tutorials/"):
        result = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT,
                                capture_output=True, text=True, timeout=EXAMPLE_DEADLINE,
                                check=False)
        assert result.returncode == 0, f"{where} failed:\n{result.stderr[-4000:]}"
    else:
        exec(compile(code, where, "exec"), {"__name__": "__doc_example__"})


def rest_publish_blocks() -> list[tuple[str, str]]:
    """The FastAPI examples that are not run as they stand (they are served by uvicorn):
    README.md's and docs/asgi.md's REST endpoint that publishes the request's body."""
    return [(f"{doc.relative_to(ROOT)}#{i}", code) for doc in DOCS
            for i, lang, code, _ in fenced(doc)
            if lang == "python" and code.startswith("# not run")
            and '@api.post("/rooms/{room}/messages")' in code]


@pytest.mark.parametrize(("where", "code"), rest_publish_blocks(),
                         ids=[w for w, _ in rest_publish_blocks()])
def test_fastapi_examples_publish_the_posted_body(where: str, code: str) -> None:
    """What a reader of these examples does: POST bytes to the endpoint. The body is the
    message (a ``body: bytes`` parameter was a query parameter to FastAPI: 422 on every POST)."""
    import anyio
    import httpx

    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    exec(compile(code, where, "exec"), namespace)
    sigma = namespace["sigma"] if "sigma" in namespace else namespace["app"]

    async def post() -> None:
        async with sigma:  # (the host's lifespan in the examples)
            transport = httpx.ASGITransport(app=namespace["api"])
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                for offset in (1, 2):
                    response = await http.post("/rooms/lobby/messages", content=b"hi there")
                    assert response.status_code == 200, response.text
                    assert response.json() == {"offset": offset}

    anyio.run(post)
    assert len(rest_publish_blocks()) == 2


def test_skipped_examples_say_why() -> None:
    for doc in DOCS:
        for i, lang, code, _ in fenced(doc):
            if lang == "python" and code.startswith("# not run"):
                first = code.splitlines()[0]
                assert re.fullmatch(r"# not run: \S.*", first), (
                    f"{doc.relative_to(ROOT)}#{i}: say why it is not run ('# not run: reason')")


def test_the_guides_have_examples() -> None:
    where = [w for w, _ in blocks()]
    assert sum(w.startswith("docs/testing.md") for w in where) >= 3
    for tutorial in ("asyncio", "trio", "rooms", "testing"):
        assert sum(w.startswith(f"docs/tutorials/{tutorial}.md") for w in where) >= 2, tutorial


# ----------------------------------------------------------------------------- browser client


def js_examples() -> tuple[str, list[tuple[str, str, str]]]:
    """The browser tutorial's server and its (where, script, expected output) triples."""
    doc = TUTORIALS / "browser.md"
    text = doc.read_text(encoding="utf-8")
    server, scripts = "", []
    found = list(fenced(doc))
    for n, (i, lang, code, end) in enumerate(found):
        if lang == "python" and code.startswith(JS_SERVER_MARK):
            server = code
        elif lang == "js":
            following = found[n + 1] if n + 1 < len(found) else None
            between = text[end:text.index("```", end)] if following else ""
            shows_output = (following is not None and following[1] == "text"
                            and "It prints:" in between)
            assert shows_output, f"browser.md#{i}: a script shows what it prints"
            assert following is not None
            scripts.append((f"docs/tutorials/browser.md#{i}", code, following[2]))
    return server, scripts


def _read_line(stream: object, deadline: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()),  # type: ignore[attr-defined]
                     daemon=True).start()
    try:
        return lines.get(timeout=deadline)
    except queue.Empty:
        return ""


def _client_built() -> Path:
    js = ROOT / "clients" / "js"
    if not (js / "dist" / "src" / "index.js").exists() or not (js / "node_modules" / "ws").exists():
        subprocess.run(["bash", str(ROOT / "examples" / "chat" / "build.sh")], cwd=ROOT,
                       check=True, timeout=600, capture_output=True)
    return js


def test_browser_tutorial_scripts_run_against_its_server() -> None:
    server_code, scripts = js_examples()
    assert server_code
    assert len(scripts) >= 2
    js = _client_built()
    env = {**os.environ, "PORT": "0"}
    server = subprocess.Popen([sys.executable, "-c", server_code], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = _read_line(server.stdout, 20.0)
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+/)\n", line)
        assert match, f"the tutorial's server did not start: {line!r}"
        origin = match[1]
        with urllib.request.urlopen(origin, timeout=10) as response:
            page = response.read().decode()
        assert '<script type="module" src="/app.js">' in page  # served on the same port
        prelude = ('import { WebSocket as __WebSocket } from "ws";\n'
                   "globalThis.WebSocket ??= __WebSocket;\n"
                   f'globalThis.location ??= new URL("{origin}");\n')
        for where, script, expected in scripts:
            result = subprocess.run(["node", "--input-type=module", "-e", prelude + script],
                                    cwd=js, capture_output=True, text=True,
                                    timeout=EXAMPLE_DEADLINE, check=False)
            assert result.returncode == 0, f"{where} failed:\n{result.stderr[-4000:]}"
            assert result.stdout == expected, f"{where} printed:\n{result.stdout}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stdout is not None:
            server.stdout.close()


# ----------------------------------------------------------------------------- the site


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("SIGMA_DOCS_SITE")
    if built:
        return Path(built)
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-d", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
                            check=False)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr[-4000:]}"
    return out


def inventory(site: Path) -> set[str]:
    """The Python objects the API reference renders: the ids of mkdocstrings' object headings
    (its objects.inv also lists every imported name as an alias, so it cannot tell)."""
    names = set()
    for page in (site / "reference").rglob("*.html"):
        names.update(re.findall(r'<h[1-6] id="([\w.]+)" class="doc doc-heading',
                                page.read_text(encoding="utf-8")))
    return names


def public_modules(package: str) -> list[str]:
    """``package`` and its modules and subpackages that have an ``__all__`` and no underscore
    in their name (subpackages with a page of their own in PACKAGES are theirs)."""
    pkg = importlib.import_module(package)
    found = [package] if hasattr(pkg, "__all__") else []
    for info in pkgutil.iter_modules(pkg.__path__, prefix=package + "."):
        leaf = info.name.rsplit(".", 1)[-1]
        if leaf.startswith("_") or info.name in PACKAGES:
            continue
        module = importlib.import_module(info.name)
        if hasattr(module, "__all__"):
            found.append(info.name)
    return found


def rendered_modules(page: str) -> set[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return set(re.findall(r"^::: ([\w.]+)\s*$", text, re.MULTILINE))


def exported_by_parent(module_name: str) -> bool:
    """Whether the package above ``module_name`` exports all of its ``__all__`` (then the
    reference shows them under the package's shorter path, the one users import from)."""
    parent_name = module_name.rsplit(".", 1)[0]
    module, parent = importlib.import_module(module_name), importlib.import_module(parent_name)
    return all(name in getattr(parent, "__all__", ()) and getattr(parent, name) is getattr(
        module, name) for name in module.__all__)


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_reference_page_lists_every_public_module(package: str) -> None:
    rendered = rendered_modules(PACKAGES[package])
    missing = {name for name in public_modules(package)
               if name not in rendered
               and not (name.rsplit(".", 1)[0] in rendered and exported_by_parent(name))}
    assert not missing, f"add `::: name` lines to {PACKAGES[package]} for {sorted(missing)}"


def documented_elsewhere(obj: object, name: str, documented: set[str]) -> bool:
    """Whether ``obj`` is documented as ``name`` in a public module that exports it (a class
    defined in a private module, such as ``sigma_core._wsevents``, is documented where the
    public module re-exports it: ``sigma_core.websocket``)."""
    for entry in documented:
        module_name, _, leaf = entry.rpartition(".")
        if leaf == name and module_name in sys.modules \
                and getattr(sys.modules[module_name], name, None) is obj:
            return True
    return False


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_reference_renders_every_public_name(site: Path, package: str) -> None:
    documented = inventory(site)
    missing = []
    for module_name in sorted(rendered_modules(PACKAGES[package])):
        module = importlib.import_module(module_name)
        assert module_name in documented
        for name in module.__all__:
            obj = getattr(module, name)
            # A re-export is documented where it is defined (the adapters re-export sigma_core's
            # options and exceptions): either place counts.
            canonical = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
            if f"{module_name}.{name}" not in documented and canonical not in documented \
                    and not documented_elsewhere(obj, name, documented):
                missing.append(f"{module_name}.{name}")
    assert not missing, f"not in the API reference: {missing}"


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_reference_renders_nothing_beyond_all(site: Path, package: str) -> None:
    """A module's reference shows its ``__all__`` and nothing else it defines or imports."""
    documented = inventory(site)
    extra = []
    for module_name in sorted(rendered_modules(PACKAGES[package])):
        exported = set(importlib.import_module(module_name).__all__)
        extra += [name for name in documented
                  if name.startswith(module_name + ".")
                  and "." not in name[len(module_name) + 1:]
                  and name[len(module_name) + 1:] not in exported
                  and name not in PACKAGES and name not in rendered_modules(PACKAGES[package])]
    assert not extra, f"rendered but not in __all__: {sorted(extra)}"


def test_reference_has_nothing_private(site: Path) -> None:
    private = sorted(name for name in inventory(site)
                     if any(part.startswith("_") and not (part.startswith("__")
                                                          and part.endswith("__"))
                            for part in name.split(".")))
    assert not private, private


def test_reference_shows_defaults_descriptions_and_raises(site: Path) -> None:
    page = (site / "reference" / "sigma_core" / "index.html").read_text(encoding="utf-8")
    plain = re.sub(r"<[^>]+>", "", page)
    # An option, its default and its `#:` description.
    assert "heartbeat_interval: float = 25.0" in plain
    assert "declare dead after 60 s of silence" in plain
    # Exceptions raised, as a section of the docstring.
    adapter = (site / "reference" / "sigma_asyncio" / "index.html").read_text(encoding="utf-8")
    connect = adapter[adapter.index('id="sigma_asyncio.SigmaSocketClient.connect"'):]
    connect = connect[:connect.index('id="sigma_asyncio.SigmaSocketClient.disconnect"')]
    assert "Raises" in connect
    assert "ConnectionFailed" in connect
    # Sphinx roles in docstrings became links, not raw text.
    assert ":class:`" not in plain
    assert ":meth:`" not in plain
