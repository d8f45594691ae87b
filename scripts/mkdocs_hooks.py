"""MkDocs hooks for the docs site (mkdocs.yml ``hooks:``).

The Markdown files under docs/ are also read on the repository, where they link to files outside
docs/ (``../fuzz/README.md``, ``../sigma_core/hub.py``). The site has no such pages, so each of
those links becomes the file's repository path in code font. A link to a repository file that
does not exist fails the build, as a broken link between pages does under ``--strict``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

__all__ = ["on_page_markdown"]

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: An inline Markdown link whose target is relative (no scheme, no leading / or #).
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]\n]+)\]\((?P<target>(?![a-z][a-z0-9+.-]*:|/|#)[^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def on_page_markdown(markdown: str, *, page: Any, **kwargs: Any) -> str:
    page_dir = (DOCS / page.file.src_uri).parent
    where = page.file.src_uri

    def rewrite(match: re.Match[str]) -> str:
        target = match["target"]
        path_part, _, _fragment = target.partition("#")
        resolved = (page_dir / path_part).resolve()
        if not path_part or resolved.is_relative_to(DOCS):
            return match[0]  # a page of the site: MkDocs checks it
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            raise PluginError(f"{where}: link to {target!r}, which is not in the repository")
        repo_path = resolved.relative_to(ROOT).as_posix() + ("/" if resolved.is_dir() else "")
        text = match["text"]
        if text.strip("`") in (repo_path, repo_path.rstrip("/"), path_part):
            return f"`{repo_path}`"
        return f"{text} (`{repo_path}`)"

    # Code blocks are left as they are.
    out, last = [], 0
    for fence in FENCE.finditer(markdown):
        out.append(LINK.sub(rewrite, markdown[last:fence.start()]))
        out.append(fence[0])
        last = fence.end()
    out.append(LINK.sub(rewrite, markdown[last:]))
    return "".join(out)
