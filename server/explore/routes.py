"""``/explore`` (query builder, chart, table, SQL and the routing explanation),
``/explore/model`` (the model: members, rollups, endpoints), their assets under
``/explore/static/``, and ``/`` redirecting to ``/explore``.

Both pages are the same document; its script shows one view or the other from the path and
keeps the whole state of a view in the URL.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from litestar import Request, Response, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.response import Redirect

from server.runtime.state import State

ASSETS = {"app.js": "text/javascript", "chart.js": "text/javascript", "style.css": "text/css"}
PAGE = "explore.html"
#: assets never change while the server runs; a reload of the page revalidates them
CACHE = {"Cache-Control": "no-cache"}
#: the page may hold an API key (the tab's storage): no other site may frame it, and it runs
#: only its own scripts and styles and talks only to this server
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {**CACHE, "Content-Security-Policy": POLICY, "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _read(name: str) -> bytes:
    return resources.files("server.explore").joinpath("static", name).read_bytes()


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    del state  # the page talks to the JSON API like any client
    page = _read(PAGE)
    assets = {name: _read(name) for name in ASSETS}

    @get("/", include_in_schema=False)
    async def root() -> Redirect:
        return Redirect(path="/explore")

    @get(["/explore", "/explore/model"], include_in_schema=False)
    async def explore() -> Response[bytes]:
        return Response(content=page, media_type="text/html; charset=utf-8", headers=HEADERS)

    @get("/explore/static/{name:str}", include_in_schema=False)
    async def static(request: Request[Any, Any, Any]) -> Response[bytes]:
        name = request.path_params["name"]
        if name not in assets:
            raise NotFoundException(detail=f"no asset {name}")
        return Response(content=assets[name], media_type=f"{ASSETS[name]}; charset=utf-8",
                        headers=HEADERS)

    return [root, explore, static]
