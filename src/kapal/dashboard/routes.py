"""The dashboard's routes, included at the root of the API's ASGI app.

Pages live at `/`, `/signup`, `/login`, `/logout` and under `/dashboard`; the stylesheet under
`/static`. None of them collides with the Platform API's JSON routes.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Response
from fastapi.responses import FileResponse

from kapal.dashboard import accounts, app_pages
from kapal.dashboard.render import STATIC_DIR

router = APIRouter(include_in_schema=False)
router.include_router(accounts.router)
router.include_router(app_pages.router)

_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(css|svg|png|ico)$")


@router.get("/static/{filename}")
def static(filename: str) -> Response:
    # A plain file name, no path: nothing outside the static directory can be reached.
    path = STATIC_DIR / filename
    if not _STATIC_NAME.match(filename) or not path.is_file():
        return Response("Not found.\n", status_code=404, media_type="text/plain")
    return FileResponse(
        path, headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    )
