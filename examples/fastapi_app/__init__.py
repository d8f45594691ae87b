"""A FastAPI app with SigmaSockets on the same port: ``uvicorn examples.fastapi_app.app:app``."""
