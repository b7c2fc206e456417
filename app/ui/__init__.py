"""The web dashboard at /ui (SPEC §13): server-rendered pages over the API's services."""

from app.ui.routes import router

__all__ = ["router"]
