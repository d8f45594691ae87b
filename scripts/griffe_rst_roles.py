"""A griffe extension for the docs site (mkdocs.yml): Sphinx roles in docstrings become links.

The sources' docstrings use reStructuredText roles (``:class:`~sigma_core.hub.Hub```,
``:meth:`Simulation.cut```) and double-backtick literals. mkdocstrings reads docstrings as
Markdown, where those would show as raw text. This rewrites each role into an *optional*
cross-reference (``<autoref identifier=... optional>``): a link when the target is in the API
reference, plain code otherwise, never a broken link. Names are resolved in the docstring's own
scope, as Sphinx would. Double backticks become single ones (same rendering, no stray quotes).
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

__all__ = ["RstRoles", "convert"]

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|meth|func|attr|mod|exc|data|obj|const):`(?P<target>[^`]+)`")
LITERAL = re.compile(r"``(?P<code>[^`]+?)``")


def convert(text: str, scope: griffe.Object | None = None) -> str:
    """``text`` with its roles turned into optional autorefs and ``x`` literals into Markdown."""

    def role(match: re.Match[str]) -> str:
        target = match["target"].strip()
        explicit = re.fullmatch(r"(?P<title>.+?)\s*<(?P<path>[^>]+)>", target)
        if explicit:
            title, path = explicit["title"], explicit["path"]
        else:
            path = target.lstrip("~")
            title = path.rsplit(".", 1)[-1] if target.startswith("~") else path
            if match["role"] in ("meth", "func"):
                title += "()"
        identifier = _resolve(path.lstrip("~"), scope)
        return (f'<autoref identifier="{html.escape(identifier)}" optional>'
                f"<code>{html.escape(title)}</code></autoref>")

    return LITERAL.sub(lambda m: f"`{m['code']}`", ROLE.sub(role, text))


def _resolve(path: str, scope: griffe.Object | None) -> str:
    """The full dotted path ``path`` names when written inside ``scope``."""
    if scope is None:
        return path
    head, _, rest = path.partition(".")
    try:
        resolved = scope.resolve(head)  # this scope, then its parents'
    except griffe.NameResolutionError:
        return path
    return f"{resolved}.{rest}" if rest else resolved


class RstRoles(griffe.Extension):
    """Rewrites every docstring once the object tree is complete (names resolve then)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = convert(obj.docstring.value, obj)
