"""The MCP server, driven by the official MCP Python client: over Streamable HTTP at ``/mcp``
of a live ``semantic serve`` with access control and row-level security on, and over stdio
(``semantic mcp``) both through that server and on its own over a data directory."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from mcp import Client, ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from server.auth.issue import create_key
from tests.processes import ROOT, free_port, semantic

T = TypeVar("T")
REGIONS = ("eu-central", "us-east", "us-west")
ROWS = 3000
QUERY = {"measures": ["total_events", "total_revenue"], "dimensions": ["region"],
         "grain": "day", "time_range": {"from": "2026-01-02T06:30", "to": "2026-01-05"},
         "order": ["region", "event_ts"]}
TOOLS = {"list_sources", "list_members", "run_query", "explain_query", "dimension_values"}


@dataclass
class Live:
    url: str
    data_dir: Path
    model: Path
    keys: dict[str, str]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLICKHOUSE_URL", "SEMANTIC_API_KEY")}
    return {**env, "SEMANTIC_DATA_DIR": str(data_dir), **extra}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The demo model with row-level security on ``region``, served on a free port with
    keys for every region, for eu-central only, without the read scope, and for three
    members only."""
    base = tmp_path_factory.mktemp("mcp")
    data_dir, model = base / "chdb", base / "metrics.yaml"
    model.write_text((ROOT / "metrics.yaml").read_text().replace(
        "    rollups:\n", "    security:\n      regions: region\n    rollups:\n", 1))
    keys, entries = {}, []
    for name, scopes, regions, members in (
            ("all", ["read"], REGIONS, []), ("eu", ["read"], REGIONS[:1], []),
            ("ingest", ["ingest"], REGIONS, []),
            ("narrow", ["read"], REGIONS, ["total_events", "paying_share", "region"])):
        keys[name], entry = create_key(scopes, [f"regions={','.join(regions)}"], members, name)
        entries.append(entry)
    (base / "semantic.toml").write_text("\n".join(entries))
    for command in (("demo", "--rows", str(ROWS), "--seed", "5"), ("apply",)):
        result = semantic(data_dir, "--model", str(model), *command)
        assert result.returncode == 0, result.stderr
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "server.cli", "--model", str(model),
                               "serve", "--port", str(port)], cwd=ROOT, env=_env(data_dir),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        record = data_dir / "server.json"
        for _ in range(600):
            if record.exists() and str(port) in record.read_text():
                break
            assert server.poll() is None, "the server exited"
            time.sleep(0.1)
        yield Live(f"http://127.0.0.1:{port}", data_dir, model, keys)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def _post(url: str, body: object, key: str | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    sent = {"Content-Type": "application/json", **(headers or {})}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, json.dumps(body).encode(), sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def over_http(live: Live, key: str | None,
              calls: Callable[[ClientSession], Awaitable[T]]) -> T:
    async def run() -> T:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                streamable_http_client(f"{live.url}/mcp", http_client=http) as streams, \
                ClientSession(streams[0], streams[1]) as session:
            await session.initialize()
            return await calls(session)
    return asyncio.run(run())


def over_stdio(data_dir: Path, calls: Callable[[ClientSession], Awaitable[T]],
               *args: str, **env: str) -> T:
    """``semantic mcp`` spawned by the client, as a desktop client starts it."""
    async def run() -> T:
        parameters = StdioServerParameters(command=sys.executable, cwd=str(ROOT),
                                           args=["-m", "server.cli", *args, "mcp"],
                                           env=_env(data_dir, **env))
        async with stdio_client(parameters) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            return await calls(session)
    return asyncio.run(run())


def _routing(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without its timings."""
    meta = {k: v for k, v in answer["meta"].items() if k not in ("elapsed_ms", "statistics")}
    return {"data": answer["data"], "meta": meta}


def test_mcp_http_lists_the_tools_and_the_members_of_v1_meta(live: Live) -> None:
    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.list_tools(), await session.call_tool("list_sources", {}),
                await session.call_tool("list_members", {}),
                await session.call_tool("list_members", {"kind": "metrics"}))

    tools, sources, members, metrics = over_http(live, live.keys["all"], calls)
    assert {t.name for t in tools.tools} == TOOLS
    query_tool = next(t for t in tools.tools if t.name == "run_query")
    assert set(query_tool.input_schema["properties"]) >= {"measures", "filters", "time_range"}
    assert all(t.annotations and t.annotations.read_only_hint for t in tools.tools)
    request = urllib.request.Request(f"{live.url}/v1/meta",
                                     headers={"Authorization": f"Bearer {live.keys['all']}"})
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        meta = json.loads(response.read())["sources"][0]
    assert sources.structured_content["sources"][0]["measures"] == [
        m["name"] for m in meta["measures"]]
    assert "events (table analytics.events, time column event_ts" in sources.content[0].text
    listed = members.structured_content
    assert listed["source"] == "events"
    assert [(d["name"], d["type"], d["description"]) for d in listed["dimensions"]] == [
        (d["name"], d["type"], d["description"]) for d in meta["dimensions"]]
    assert [m["name"] for m in listed["measures"]] == [m["name"] for m in meta["measures"]]
    assert "  total_events (count): Number of events." in members.content[0].text
    assert set(metrics.structured_content) == {"source", "time", "metrics"}
    paying = next(m for m in metrics.structured_content["metrics"]
                  if m["name"] == "paying_share")
    assert paying["measures"] == ["paying_events", "total_events"] and paying["exact"]


def test_mcp_http_query_and_explain_answer_as_the_http_api(live: Live) -> None:
    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.call_tool("run_query", QUERY),
                await session.call_tool("explain_query", QUERY),
                await session.call_tool("dimension_values", {"dimension": "region"}))

    answer, explained, values = over_http(live, live.keys["all"], calls)
    assert not answer.is_error
    status, expected = _post(f"{live.url}/v1/query", QUERY, live.keys["all"])
    assert status == 200 and expected["data"]
    assert _routing(answer.structured_content) == _routing(expected)
    meta = expected["meta"]
    assert answer.structured_content["served_from"] == f"rollup {meta['rollup']} ({meta['table']})"
    assert len(meta["tables"]) > 1  # the ragged start comes from a finer rollup or the raw table
    text = answer.content[0].text.splitlines()
    assert text[0].split() == ["region", "event_ts", "total_events", "total_revenue"]
    assert text[1].split() == [str(v) for v in expected["data"][0].values()]
    assert text[-1].startswith(f"-- {len(expected['data'])} row(s) from rollup {meta['rollup']}")
    status, plan = _post(f"{live.url}/v1/explain", QUERY, live.keys["all"])
    assert status == 200
    for key in ("table", "tables", "rollup", "sql", "parameters", "pieces", "time_range"):
        assert explained.structured_content[key] == plan[key], key
    assert explained.content[0].text.startswith(f"answer from: {' + '.join(plan['tables'])}")
    assert "sql: SELECT " in explained.content[0].text
    assert values.structured_content["values"] == list(REGIONS)


def test_mcp_http_bad_arguments_are_tool_errors_naming_the_field(live: Live) -> None:
    bad_op = {"measures": ["total_events"],
              "filters": [{"member": "total_events", "op": "contains", "value": "1"}]}

    async def calls(session: ClientSession) -> list[Any]:
        return [await session.call_tool("run_query", bad_op),
                await session.call_tool("explain_query", {"measures": ["total_event"]}),
                await session.call_tool("run_query", {"measures": ["total_events"],
                                                      "limit": 10**9}),
                await session.call_tool("dimension_values", {"dimension": "regio"}),
                await session.call_tool("list_members", {"kind": "measure"}),
                await session.call_tool("list_sources", {"verbose": True})]

    results = over_http(live, live.keys["all"], calls)
    assert all(r.is_error for r in results)
    fields = [r.structured_content["error"]["field"] for r in results]
    assert fields == ["filters[0].op", "measures[0]", "limit", "dimension", "kind", "verbose"]
    status, expected = _post(f"{live.url}/v1/query", bad_op, live.keys["all"])
    assert status == 400
    first = results[0].structured_content["error"]
    assert (first["code"], first["message"]) == (expected["error"]["code"],
                                                 expected["error"]["message"])
    assert results[0].content[0].text == (f"error: {first['message']} (field: filters[0].op)")
    assert "did you mean 'total_events'?" in results[1].content[0].text
    assert "did you mean 'measures'?" in results[4].content[0].text


def test_mcp_http_needs_the_read_scope_an_allowed_origin_and_a_bounded_body(live: Live) -> None:
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    status, body = _post(f"{live.url}/mcp", initialize, headers=accept)
    assert status == 401 and body["error"]["code"] == "unauthorized"
    status, body = _post(f"{live.url}/mcp", initialize, live.keys["ingest"], headers=accept)
    assert status == 403 and "lacks the 'read' scope" in body["error"]["message"]
    status, body = _post(f"{live.url}/mcp", initialize, live.keys["all"],
                         headers={**accept, "Origin": "http://attacker.example"})
    assert status == 403 and body["error"]["code"] == "foreign_origin"
    # refused on its declared length, before the body is read (so none is sent here)
    host, port = live.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    connection.putrequest("POST", "/mcp")
    for name, value in {**accept, "Content-Type": "application/json",
                        "Authorization": f"Bearer {live.keys['all']}",
                        "Content-Length": str((1 << 20) + 8192)}.items():
        connection.putheader(name, value)
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "body_too_large"
    connection.close()
    with pytest.raises(ExceptionGroup) as refused:
        over_http(live, None, lambda session: session.list_tools())
    assert refused.group_contains(MCPError)


def test_mcp_http_rows_are_those_the_callers_claims_allow(live: Live) -> None:
    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.call_tool("run_query", QUERY),
                await session.call_tool("dimension_values", {"dimension": "region"}))

    answer, values = over_http(live, live.keys["eu"], calls)
    rows = answer.structured_content["data"]
    assert rows and {row["region"] for row in rows} == {"eu-central"}
    everything = _post(f"{live.url}/v1/query", QUERY, live.keys["all"])[1]["data"]
    assert rows == [row for row in everything if row["region"] == "eu-central"]
    assert values.structured_content["values"] == ["eu-central"]


def test_mcp_http_high_level_client_restricts_rows_too(live: Live) -> None:
    """``mcp.Client`` first asks ``server/discover`` and speaks the per-request protocol
    era, a separate path through the SDK: the caller's claims hold there as well."""
    async def run() -> tuple[Any, str]:
        headers = {"Authorization": f"Bearer {live.keys['eu']}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http, \
                Client(streamable_http_client(f"{live.url}/mcp", http_client=http)) as client:
            return await client.call_tool("run_query", QUERY), client.protocol_version

    answer, version = asyncio.run(run())
    assert not answer.is_error, answer.content
    assert {row["region"] for row in answer.structured_content["data"]} == {"eu-central"}
    assert version in MODERN_PROTOCOL_VERSIONS


def test_mcp_lists_and_answers_only_the_members_a_key_may_read(live: Live) -> None:
    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.call_tool("list_members", {}),
                await session.call_tool("run_query", {"measures": ["total_revenue"]}))

    members, refused = over_http(live, live.keys["narrow"], calls)
    listed = members.structured_content
    assert [m["name"] for m in listed["dimensions"]] == ["region"]
    assert [m["name"] for m in listed["measures"]] == ["total_events"]
    assert [m["name"] for m in listed["metrics"]] == ["paying_share"]
    assert refused.is_error
    status, expected = _post(f"{live.url}/v1/query", {"measures": ["total_revenue"]},
                             live.keys["narrow"])
    assert status == 403
    error = refused.structured_content["error"]
    assert (error["code"], error["message"], error["field"]) == (
        "forbidden", expected["error"]["message"], "measures[0]")


def test_mcp_stdio_goes_through_the_running_server_with_the_callers_key(live: Live) -> None:
    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.list_tools(), await session.call_tool("run_query", QUERY),
                await session.call_tool("run_query", {"measures": ["total_event"]}))

    tools, answer, bad = over_stdio(live.data_dir, calls, "--model", str(live.model),
                                    SEMANTIC_API_KEY=live.keys["eu"])
    assert {t.name for t in tools.tools} == TOOLS
    expected = _post(f"{live.url}/v1/query", QUERY, live.keys["eu"])[1]
    assert _routing(answer.structured_content) == _routing(expected)
    assert {row["region"] for row in answer.structured_content["data"]} == {"eu-central"}
    assert bad.is_error and bad.structured_content["error"]["field"] == "measures[0]"
    refused = over_stdio(live.data_dir, lambda s: s.call_tool("run_query", QUERY),
                         "--model", str(live.model))
    assert refused.is_error
    assert "answered 401" in refused.content[0].text
    assert "set SEMANTIC_API_KEY to a key with the read scope" in refused.content[0].text


def test_mcp_stdio_opens_the_warehouse_itself_without_a_server(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    data_dir = tmp_path_factory.mktemp("mcp-local") / "chdb"
    for command in (("demo", "--rows", "2000", "--seed", "1"), ("apply",)):
        assert semantic(data_dir, *command).returncode == 0

    async def calls(session: ClientSession) -> tuple[Any, ...]:
        return (await session.call_tool("run_query", {"measures": ["total_events"],
                                                      "dimensions": ["region"]}),
                await session.call_tool("explain_query", {"measures": ["total_events"]}))

    answer, explained = over_stdio(data_dir, calls)
    assert sum(row["total_events"] for row in answer.structured_content["data"]) == 2000
    assert answer.structured_content["served_from"].startswith("rollup region_daily (")
    assert explained.structured_content["rollup"] == "totals"
    assert not (data_dir / "server.json").exists()


def test_mcp_http_refuses_a_call_whose_caller_cannot_be_told() -> None:
    from types import SimpleNamespace

    from semantic.errors import SemanticError
    from server.api.mcp import CALLER, _as_caller

    for request in (None, SimpleNamespace(scope={"type": "http"})):
        with pytest.raises(SemanticError, match="without its HTTP request"), \
                _as_caller(SimpleNamespace(request=request)):  # type: ignore[arg-type]
            pass
    with _as_caller(SimpleNamespace(request=SimpleNamespace(scope={CALLER: None}))):  # type: ignore[arg-type]
        pass


def test_mcp_help_says_how_it_reaches_the_warehouse(capsys: pytest.CaptureFixture[str]) -> None:
    from server.cli import main

    with pytest.raises(SystemExit) as done:
        main(["mcp", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "usage: semantic mcp [-h] [--server URL]" in out
    assert "list_sources" in out and "run_query" in out and "$SEMANTIC_API_KEY" in out
