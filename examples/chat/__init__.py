"""The SigmaSockets chat demo: a Vue 3 + Vuetify web app and its Python server on
``sigma_asyncio``, the page and the WebSocket on one port. Run it with ``bash scripts/chat.sh``
or ``python -m examples.chat`` (see README.md beside this file)."""
