"""Serves the playground page (a LiveKit web client) and the call console from `playground/`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from functions.domain.errors import NotFound

PLAYGROUND_DIR = Path(__file__).resolve().parents[2] / "playground"
# The only files served: nothing else under playground/ (node_modules included) is reachable.
ASSETS = {
    "index.html": ("index.html", "text/html; charset=utf-8"),
    "app.js": ("app.js", "text/javascript; charset=utf-8"),
    "style.css": ("style.css", "text/css; charset=utf-8"),
    "console.html": ("console.html", "text/html; charset=utf-8"),
    "console.js": ("console.js", "text/javascript; charset=utf-8"),
    "console.css": ("console.css", "text/css; charset=utf-8"),
    "livekit-client.umd.js": (
        "node_modules/livekit-client/dist/livekit-client.umd.js",
        "text/javascript; charset=utf-8",
    ),
}

router = APIRouter(prefix="/voice/realtime", include_in_schema=False)


def _serve(asset: str) -> FileResponse:
    entry = ASSETS.get(asset)
    path = PLAYGROUND_DIR / entry[0] if entry else None
    if entry is None or path is None or not path.is_file():
        raise NotFound(
            f"playground asset '{asset}' is not available here; the playground is served by the "
            "local stack (`make dev`, which runs `make playground` first)"
        )
    return FileResponse(path, media_type=entry[1], headers={"cache-control": "no-store"})


@router.get("/playground")
def playground_page() -> FileResponse:
    return _serve("index.html")


@router.get("/console")
def console_page() -> FileResponse:
    return _serve("console.html")


@router.get("/playground/{asset}")
def playground_asset(asset: str) -> FileResponse:
    return _serve(asset)
