"""The JSON API over a store holding the demo: what the UI reads, checked against the
OpenAPI document the API publishes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from web_data import MARKUP, WebDemo

from tracebraid.analysis import analyze
from tracebraid.store import SqliteStore, fetch_workflow
from tracebraid.views.documents import workflow_document

pytestmark = pytest.mark.asyncio


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
    "null": type(None),
    "array": list,
    "object": dict,
}


def conforms(value: Any, schema: dict[str, Any], spec: dict[str, Any], where: str = "$") -> None:
    """Assert ``value`` fits the OpenAPI schema (the subset the API's document uses)."""
    schema = _resolve(schema, spec)
    if "anyOf" in schema:
        errors = []
        for option in schema["anyOf"]:
            try:
                conforms(value, option, spec, where)
                return
            except AssertionError as exc:
                errors.append(str(exc))
        raise AssertionError(f"{where}: fits no option: {errors}")
    kinds = schema.get("type")
    if kinds is not None:
        names = kinds if isinstance(kinds, list) else [kinds]
        ok = any(
            isinstance(value, _TYPES[n])
            and not (n in ("integer", "number") and value is True)
            and not (n in ("integer", "number") and value is False)
            for n in names
        )
        assert ok, f"{where}: {value!r} is not {names}"
    if isinstance(value, dict) and "properties" in schema:
        missing = set(schema["required"]) - value.keys()
        extra = value.keys() - schema["properties"].keys()
        assert not missing, f"{where}: missing {sorted(missing)}"
        assert not extra, f"{where}: undocumented {sorted(extra)}"
        for key, item in value.items():
            conforms(item, schema["properties"][key], spec, f"{where}.{key}")
    if isinstance(value, dict) and "additionalProperties" in schema:
        for key, item in value.items():
            conforms(item, schema["additionalProperties"], spec, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            conforms(item, schema["items"], spec, f"{where}[{i}]")


async def _spec(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/api/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


async def _checked(client: httpx.AsyncClient, spec: dict[str, Any], path: str, url: str) -> Any:
    response = await client.get(url)
    assert response.status_code == 200, response.text
    document = response.json()
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    conforms(document, schema["schema"], spec)
    return document


async def test_openapi_lists_every_api_route_and_its_parameters(
    client: httpx.AsyncClient,
) -> None:
    spec = await _spec(client)
    assert spec["openapi"].startswith("3.1")
    paths = spec["paths"]
    for expected in ("/api/search", "/api/workflows/{key}/view", "/api/lint", "/api/pending"):
        assert expected in paths
    search = {p["name"] for p in paths["/api/search"]["get"]["parameters"]}
    assert {"service", "event_name", "correlation_id", "event_id", "has_retries"} <= search
    assert {"has_pending", "has_errors", "has_broken", "min_duration_ms", "cursor"} <= search
    # Every $ref points at a component that exists.
    text = str(spec)
    for name in spec["components"]["schemas"]:
        assert f"#/components/schemas/{name}" in text


async def test_view_of_the_order_shows_retries_pending_lag_and_critical_path(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    spec = await _spec(client)
    view = await _checked(
        client, spec, "/api/workflows/{key}/view", f"/api/workflows/{web_demo.plain}/view"
    )
    workflow = view["workflow"]
    by_step = {b["step"]: b for b in workflow["branches"]}
    webhook = by_step["send-warehouse-webhook"]
    assert [a["outcome"] for a in webhook["attempts"]][-1] == "ok"
    assert sum(a["outcome"] != "ok" for a in webhook["attempts"]) == 2
    assert webhook["retries"] == 2
    assert by_step["award-loyalty-points"]["status"] == "in_flight"
    assert [lag["consumer"] for lag in workflow["lagging"]] == ["project-order-summary"]
    critical = [s["step"] for s in workflow["critical_path"]["steps"]]
    assert critical[-1] == "send-warehouse-webhook"
    # The spans document carries each identity as its own field.
    attempt = webhook["attempts"][0]["span"]
    span = next(
        s for s in view["spans"]["spans"]
        if (s["trace_id"], s["span_id"]) == (attempt["trace_id"], attempt["span_id"])
    )  # fmt: skip
    assert span["identity"]["correlation_id"] == web_demo.plain
    assert span["identity"]["event_id"] == webhook["event_id"]
    assert span["identity"]["attempt"] == 1
    assert span["identity"]["consumer"] == "send-warehouse-webhook"
    assert span["identity"]["causation_id"] is not None
    assert span["parent_span_id"] is not None


async def test_workflow_document_is_the_cli_document(
    client: httpx.AsyncClient, web_demo: WebDemo, web_store: SqliteStore
) -> None:
    response = await client.get(f"/api/workflows/{web_demo.plain}")
    served = response.json()
    spans = fetch_workflow(web_store, web_demo.plain).spans
    local = workflow_document(
        analyze(spans, now_ns=served["summary"]["now_ns"]), key=web_demo.plain
    )
    # The same analysis: pending may differ only by what the server learned from history.
    assert served["schema"] == local["schema"]
    assert [b["attempts"] for b in served["branches"]] == [
        [dict(a) for a in b["attempts"]] for b in local["branches"]
    ]
    assert served["critical_path"] == local["critical_path"]


async def test_stitched_edge_and_the_island_trace_alone(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    spec = await _spec(client)
    view = await _checked(
        client, spec, "/api/workflows/{key}/view", f"/api/workflows/{web_demo.broken}/view"
    )
    stitched = [b for b in view["workflow"]["branches"] if b["stitched"]]
    assert stitched, "the planted propagation break is a stitched delivery"
    island = stitched[0]["attempts"][0]["span"]["trace_id"]
    assert island != view["workflow"]["roots"][0]["trace_id"]
    alone = await _checked(
        client,
        spec,
        "/api/workflows/{key}/view",
        f"/api/workflows/{island}/view?scope=trace",
    )
    assert alone["scope"] == "trace"
    assert alone["workflow"]["summary"]["trace_ids"] == [island]
    assert {s["trace_id"] for s in alone["spans"]["spans"]} == {island}


async def test_other_documents_conform(client: httpx.AsyncClient, web_demo: WebDemo) -> None:
    spec = await _spec(client)
    w = "/api/workflows/{key}"
    key = web_demo.plain
    for path, url in [
        (w, f"/api/workflows/{key}"),
        (f"{w}/latency", f"/api/workflows/{key}/latency"),
        (f"{w}/spans", f"/api/workflows/{key}/spans"),
        (f"{w}/mermaid", f"/api/workflows/{key}/mermaid"),
        ("/api/pending", "/api/pending"),
        ("/api/retries", "/api/retries?limit=10"),
        ("/api/facets", "/api/facets"),
        ("/api/search", "/api/search?limit=3"),
    ]:
        await _checked(client, spec, path, url)
    view = (await client.get(f"/api/workflows/{key}/view")).json()
    assert not any(s["details"] or s["attributes"] for s in view["spans"]["spans"])
    first = view["spans"]["spans"][0]
    one = await _checked(
        client,
        spec,
        "/api/spans/{trace_id}/{span_id}",
        f"/api/spans/{first['trace_id']}/{first['span_id']}",
    )
    assert one["span"]["details"] is True
    assert one["span"]["attributes"], "the full span carries its attributes"
    assert (await client.get(f"/api/spans/{first['trace_id']}/{'0' * 16}")).status_code == 404
    event = view["workflow"]["branches"][-1]["event_id"]
    why = await _checked(client, spec, f"{w}/why", f"/api/workflows/{key}/why?target={event}")
    assert why["complete"] is True
    assert why["steps"][0]["span"]["name"] == "POST /orders"


async def test_search_filters(client: httpx.AsyncClient, web_demo: WebDemo) -> None:
    async def keys(**params: str) -> set[str]:
        response = await client.get("/api/search", params=params)
        assert response.status_code == 200, response.text
        return {t["key"] for t in response.json()["traces"]}

    async def traces(**params: str) -> set[str]:
        response = await client.get("/api/search", params=params)
        return {t["trace_id"] for t in response.json()["traces"]}

    everything = await keys()
    assert {web_demo.plain, web_demo.broken, web_demo.hostile} <= everything
    assert await keys(correlation_id=web_demo.plain) == {web_demo.plain}
    assert await keys(has_broken="true") == {web_demo.broken}
    broken, intact, every = (
        await traces(has_broken="true"),
        await traces(has_broken="false"),
        await traces(),
    )
    assert len(broken) == 2, "the island and the trace whose publish lost its context"
    assert not broken & intact and broken | intact == every
    assert {web_demo.plain, web_demo.broken} <= await keys(has_pending="true")
    assert web_demo.hostile not in await keys(has_pending="true")
    assert {web_demo.plain, web_demo.broken, web_demo.hostile} <= await keys(has_retries="yes")
    assert await keys(service="loyalty") >= {web_demo.plain}
    assert await keys(service="no-such-service") == set()
    assert web_demo.plain in await keys(event_name="payment.authorized")
    assert await keys(min_duration_ms="3600000") == set()
    hits = (await client.get("/api/search")).json()["traces"]
    instant = {t["trace_id"] for t in hits if t["duration_ns"] <= 1}
    assert instant, "the in-flight loyalty step's trace is its lone start marker: 0 ns"
    assert await traces(max_duration_ms="0.000001") == instant


async def test_search_by_event_id_finds_publisher_and_consumers(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    view = (await client.get(f"/api/workflows/{web_demo.plain}/view")).json()
    event = view["workflow"]["branches"][0]["event_id"]
    response = await client.get("/api/search", params={"event_id": event})
    assert {t["key"] for t in response.json()["traces"]} == {web_demo.plain}


async def test_lint_findings_link_to_their_traces(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    response = await client.get("/api/lint?since=7d")
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["schema"] == "tracebraid.lint/v1"
    broken = [f for f in document["findings"] if f["rule"] == "TB101"]
    assert broken and broken[0]["service"] == "payment"
    traces = {s["trace_id"] for s in broken[0]["spans"]}
    view = (await client.get(f"/api/workflows/{web_demo.broken}/view")).json()
    assert traces <= set(view["workflow"]["summary"]["trace_ids"])


@pytest.mark.parametrize(
    ("url", "status", "words"),
    [
        ("/api/workflows/order_nowhere/view", 404, "no trace, correlation or event ID"),
        ("/api/workflows/abc/view?scope=trace", 404, "not a trace ID"),
        ("/api/workflows/order_441/view?scope=galaxy", 400, "scope must be"),
        ("/api/workflows/order_441/why", 400, "target"),
        ("/api/search?has_retries=maybe", 400, "true or false"),
        ("/api/search?limit=0", 400, "limit must be between"),
        ("/api/search?limit=ten", 400, "must be a number"),
        ("/api/search?min_duration_ms=-4", 400, "cannot be negative"),
        ("/api/search?cursor=yesterday", 400, "bad cursor"),
        ("/api/search?since=soon", 400, "not a duration"),
        ("/api/pending?limit=100000", 400, "limit must be between"),
    ],
)
async def test_bad_requests_say_what_was_wrong(
    client: httpx.AsyncClient, url: str, status: int, words: str
) -> None:
    response = await client.get(url)
    assert response.status_code == status
    body = response.json()
    assert body["status"] == status
    assert words in body["error"]


async def test_token_guards_the_api_but_not_the_data_free_shell(
    guarded_client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    denied = await guarded_client.get("/api/search")
    assert denied.status_code == 401
    assert "bearer token" in denied.text
    wrong = await guarded_client.get("/api/search", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    allowed = await guarded_client.get("/api/search", headers={"Authorization": "Bearer s3cret"})
    assert allowed.status_code == 200
    assert web_demo.plain in allowed.text
    for path in ("/", "/ui/", "/ui/static/js/app.js", "/ui/static/style.css"):
        page = await guarded_client.get(path)
        assert page.status_code == 200, path
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert web_demo.plain not in page.text
    # Only GET of the shell is public: a POST there reaches the guarded collector.
    assert (await guarded_client.post("/", content=b"{}")).status_code == 401
    # The collector itself keeps working behind the same guard.
    assert (await guarded_client.get("/healthz")).status_code == 401


async def test_markup_in_span_data_is_json_data(
    client: httpx.AsyncClient, web_demo: WebDemo
) -> None:
    response = await client.get(f"/api/workflows/{web_demo.hostile}/view")
    assert response.headers["content-type"].startswith("application/json")
    view = response.json()
    assert view["workflow"]["roots"][0]["name"] == MARKUP
