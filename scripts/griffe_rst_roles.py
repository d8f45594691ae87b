"""A griffe extension for the docs site (mkdocs.yml): Sphinx roles in docstrings become links.

The sources' docstrings use reStructuredText roles (``:class:`~sigma_core.hub.Hub```,
``:meth:`Simulation.cut```) and double-backtick literals. mkdocstrings reads docstrings as
Markdown, where those would show as raw text. This rewrites each role into an *optional*
cross-reference (``<autoref identifier=... optional>``): a link when the target is in the API
reference, plain code otherwise, never a broken link. Names are resolved in the docstring's own
scope, as Sphinx would. Double backticks become single ones (same rendering, no stray quotes),
and a literal block (a paragraph ending in ``::`` and the indented lines after it) becomes a
fenced code block. ``__slots__`` and ``__all__`` are left out of the reference.
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
FENCED = re.compile(r"(^[ ]*```\n.*?^[ ]*```$)", re.MULTILINE | re.DOTALL)
#: "text::", a blank line, then lines indented deeper than the text (reST literal block).
LITERAL_BLOCK = re.compile(
    r"^(?P<indent>[ ]*)(?P<text>\S[^\n]*?):(?P<colon>:)[ ]*\n(?P<blank>[ ]*\n)+"
    r"(?P<body>(?:(?P=indent)[ ]+\S[^\n]*\n|[ ]*\n)+)", re.MULTILINE)


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

    # Roles and literals outside code blocks only.
    parts = FENCED.split(_fence(text))
    return "".join(part if part.startswith("```") else
                   LITERAL.sub(lambda m: f"`{m['code']}`", ROLE.sub(role, part))
                   for part in parts)


def _fence(text: str) -> str:
    """reST literal blocks as fenced code blocks (their content is left as it is)."""

    def block(match: re.Match[str]) -> str:
        indent = match["indent"]
        lines = match["body"].rstrip().split("\n")
        depth = min(len(line) - len(line.lstrip()) for line in lines if line.strip())
        body = "\n".join(indent + line[depth:] if line.strip() else "" for line in lines)
        return (f"{indent}{match['text']}:\n\n{indent}```\n{body}\n{indent}```\n\n")

    return LITERAL_BLOCK.sub(block, text if text.endswith("\n") else text + "\n").rstrip("\n")


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
        if obj.is_class and "__slots__" in obj.members:
            obj.del_member("__slots__")

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        # An annotated ``__all__`` would show as an attribute; the exports were read already.
        for module in [pkg, *_submodules(pkg)]:
            if "__all__" in module.members:
                module.del_member("__all__")


def _submodules(module: griffe.Module) -> list[griffe.Module]:
    found = []
    for member in module.modules.values():
        found += [member, *_submodules(member)]
    return found
