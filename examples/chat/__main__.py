"""``python -m examples.chat [--port N ...]``: see README.md beside this file."""

from .server import main

raise SystemExit(main())
