"""The distribution's version, written here and nowhere else.

``pyproject.toml`` reads it (``[tool.setuptools.dynamic]``, statically, without importing the
package), the wheel's and sdist's metadata carry it, ``sigma_core.__version__`` and
``sigma_ops.VERSION`` are this constant, and the tests hold the TypeScript client's
``package.json`` and the deploy files' image tag to it. A constant and not
``importlib.metadata.version()`` read at run time: importing ``importlib.metadata`` (with the
``email``/``zipfile``/``csv`` modules it pulls in) cost the uvloop server's broadcast several per
cent per delivery, measured in paired runs (docs/operations.md, "What metrics cost").
"""

VERSION = "0.1.0.dev0"
