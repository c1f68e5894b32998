"""The API's own description: ``/openapi.json`` (OpenAPI 3.1) and ``/docs``, a page listing
it, served from here (no assets from elsewhere)."""

from __future__ import annotations

import threading
from typing import Any

from litestar import Response, get
from litestar.handlers import HTTPRouteHandler

from server.explore.routes import ASSETS
from server.http.serialize import encode
from server.openapi.document import build_document
from server.runtime.state import State
from server.warehouse.availability import WarehouseUnavailable

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>semantic API</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code,pre{font:13px ui-monospace,monospace}pre{background:#f5f5f5;padding:.6rem;overflow:auto}
h2{margin-top:2rem;border-bottom:1px solid #ddd}.m{font-weight:bold;margin-right:.5rem}
details{margin:.3rem 0}
</style></head><body>
<h1>semantic API</h1>
<p>The OpenAPI 3.1 document: <a href="/openapi.json"><code>/openapi.json</code></a>
(generate a client from it). Send credentials as <code>Authorization: Bearer &lt;key or
JWT&gt;</code> when access control is on.</p>
<div id="ops">Loading&hellip;</div>
<script>
fetch("/openapi.json").then(r => r.json()).then(doc => {
  const root = document.getElementById("ops"); root.textContent = "";
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const d = document.createElement("details");
      const s = document.createElement("summary");
      const m = document.createElement("span"); m.className = "m";
      m.textContent = method.toUpperCase(); s.append(m, path, " \u2014 ", op.summary || "");
      const pre = document.createElement("pre");
      pre.textContent = JSON.stringify({parameters: op.parameters, requestBody: op.requestBody,
                                        responses: op.responses}, null, 2);
      d.append(s, pre); root.append(d);
    }
  }
});
</script></body></html>
"""


def route_handlers(state: State) -> list[HTTPRouteHandler]:
    cache: dict[str, Any] = {}
    lock = threading.Lock()

    def document_bytes() -> bytes:
        """Built once per model (and again once the warehouse gave the column types)."""
        try:
            runtime = state.runtime()
        except WarehouseUnavailable:
            runtime = None
        model = runtime.model if runtime is not None else state.model
        key = (id(model), runtime is not None)
        with lock:
            if cache.get("key") == key:
                return bytes(cache["body"])
        types = {name: {d: c.type for d, c in source.dimensions.items()}
                 for name, source in runtime.compiled.sources.items()} if runtime else {}
        body = encode(build_document(model, types, state.secured, ASSETS, state.limits.query))
        with lock:
            cache.update(key=key, body=body)
        return body

    @get("/openapi.json", sync_to_thread=True)
    def openapi() -> Response[bytes]:
        return Response(content=document_bytes(), media_type="application/json")

    @get("/docs", sync_to_thread=False)
    def docs() -> Response[str]:
        return Response(content=PAGE, media_type="text/html")

    return [openapi, docs]
