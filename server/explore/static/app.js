// The explore page and the model page. Everything a view shows follows from its URL:
// /explore?source=&m=&d=&grain=&tz=&from=&to=&range=&f=&order=&limit=&raw= (f: the filters
// as JSON, in the /v1/query shape), so a view can be shared or bookmarked.
"use strict";

const $ = id => document.getElementById(id);
const GRAINS = ["minute", "hour", "day", "week", "month", "quarter", "year", "fiscal_quarter", "fiscal_year"];
const FILTER_OPS = ["in", "not_in", "contains", "starts_with"];
let META = null;
// With access control on, the API wants "Authorization: Bearer <key>": the key typed into the
// page is kept for this tab only (sessionStorage), never in the URL.
const KEY_STORE = "semantic-api-key";

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, path, body) {
  const headers = body ? {"Content-Type": "application/json"} : {};
  const key = sessionStorage.getItem(KEY_STORE);
  if (key) headers.Authorization = `Bearer ${key}`;
  const response = await fetch(path, {method, headers, body: body ? JSON.stringify(body) : undefined});
  const payload = await response.json();
  if (response.status === 401 || response.status === 403) {
    $("key-box").hidden = false;
    $("api-key").focus();
  }
  if (!response.ok) {
    const e = payload.error || {};
    throw new Error(`${e.message || response.statusText}${e.field ? ` (field: ${e.field})` : ""}`);
  }
  return payload;
}

function make(tag, props, ...children) {
  const node = Object.assign(document.createElement(tag), props || {});
  node.append(...children.filter(c => c !== null && c !== undefined));
  return node;
}

function cellText(value) {
  return value === null || value === undefined ? "" : String(value);
}

// ---- state <-> URL --------------------------------------------------------------------

function list(text) { return (text || "").split(",").map(s => s.trim()).filter(Boolean); }

//: the columns a comparison adds after each measure's name
const COMPARED = ["__compare", "__change", "__change_ratio"];

function readUrl() {
  const p = new URLSearchParams(location.search);
  let filters = [];
  try { filters = JSON.parse(p.get("f") || "[]"); } catch (e) { filters = []; }
  return {
    source: p.get("source") || "", measures: list(p.get("m")), dimensions: list(p.get("d")),
    grain: p.get("grain") || "", compare: p.get("cmp") || "", tz: p.get("tz") || "", from: p.get("from") || "",
    to: p.get("to") || "", range: p.get("range") || "", filters: Array.isArray(filters) ? filters : [],
    order: p.get("order") || "", limit: p.get("limit") || "1000", raw: p.get("raw") === "1",
  };
}

function toUrl(state) {
  const p = new URLSearchParams();
  const put = (k, v) => { if (v) p.set(k, v); };
  put("source", state.source);
  put("m", state.measures.join(","));
  put("d", state.dimensions.join(","));
  put("grain", state.grain);
  put("cmp", state.compare);
  put("tz", state.tz);
  put("from", state.from);
  put("to", state.to);
  put("range", state.range);
  if (state.filters.length) p.set("f", JSON.stringify(state.filters));
  put("order", state.order);
  if (state.limit && state.limit !== "1000") p.set("limit", state.limit);
  if (state.raw) p.set("raw", "1");
  return `/explore?${p.toString()}`;
}

function toBody(state) {
  const body = {measures: state.measures, dimensions: state.dimensions};
  if (state.source) body.source = state.source;
  if (state.grain) body.grain = state.grain;
  if (state.compare) body.compare = {offset: state.compare};
  if (state.tz) body.timezone = state.tz;
  if (state.range) body.time_range = state.range;
  else if (state.from || state.to) {
    body.time_range = {};
    if (state.from) body.time_range.from = state.from;
    if (state.to) body.time_range.to = state.to;
  }
  const filters = state.filters.filter(f => f.values && f.values.length);
  if (filters.length) body.filters = filters;
  if (state.order) body.order = list(state.order);
  if (state.limit) body.limit = Number(state.limit);
  if (state.raw) body.force_raw = true;
  return body;
}

// ---- the explore form ----------------------------------------------------------------

function currentSource() {
  return META.sources.find(s => s.name === $("source").value) || META.sources[0];
}

function checkbox(name, text, checked, describe) {
  return make("label", {title: describe(name) || ""},
    make("input", {type: "checkbox", value: name, checked: checked.includes(name)}), ` ${text}`);
}

function checkboxes(container, names, checked, describe) {
  container.replaceChildren(...names.map(name => checkbox(name, name, checked, describe)));
}

// A joined dimension is named by its path of joins and the joined source's dimension
// (airline.name, plane.maker.country). The server may give the path; the name says it anyway
// (a member's own name never holds a dot).
function joinPath(dimension) {
  if (Array.isArray(dimension.path)) return dimension.path.join(".");
  const dot = dimension.name.lastIndexOf(".");
  return dot < 0 ? "" : dimension.name.slice(0, dot);
}

// [path, dimensions] pairs: the source's own dimensions (path "") first, then one group per
// join path in the order the server lists them
function dimensionGroups(source) {
  const groups = new Map([["", []]]);
  for (const dimension of source.dimensions) {
    const path = joinPath(dimension);
    if (!groups.has(path)) groups.set(path, []);
    groups.get(path).push(dimension);
  }
  return [...groups].filter(([, dimensions]) => dimensions.length);
}

// the source's own dimensions, then a titled group of checkboxes per join
function dimensionBoxes(container, source, checked, describe) {
  container.replaceChildren(...dimensionGroups(source).flatMap(([path, dimensions]) => {
    const boxes = dimensions.map(d => checkbox(d.name, path ? d.name.slice(path.length + 1) : d.name,
                                               checked, describe));
    return path ? [make("fieldset", {className: "join", title: `joined through ${path}`},
                        make("legend", {}, path), ...boxes)] : boxes;
  }));
}

// <option>s of every dimension, the joined ones in an <optgroup> per join
function dimensionOptions(source) {
  return dimensionGroups(source).flatMap(([path, dimensions]) => {
    const options = dimensions.map(d => make("option", {value: d.name}, d.name));
    return path ? [make("optgroup", {label: path}, ...options)] : options;
  });
}

function fillMembers(state) {
  const source = currentSource();
  const aggregates = [...source.measures, ...source.metrics];
  const describe = name => (aggregates.find(m => m.name === name) ||
                            source.dimensions.find(d => d.name === name) || {}).description;
  checkboxes($("measures"), aggregates.map(m => m.name), state.measures, describe);
  dimensionBoxes($("dimensions"), source, state.dimensions, describe);
  $("add-filter").disabled = !source.dimensions.length;
  $("grain").replaceChildren(make("option", {value: ""}, "none"),
    ...(source.time ? GRAINS : []).map(g => make("option", {value: g}, g)));
  $("grain").value = state.grain;
  $("filters").replaceChildren(...state.filters.map(filterRow));
}

function filterRow(filter) {
  const source = currentSource();
  const member = make("select", {className: "filter-member"}, ...dimensionOptions(source));
  member.value = filter.member || source.dimensions[0].name;
  const op = make("select", {className: "filter-op"}, ...FILTER_OPS.map(o => make("option", {value: o}, o)));
  op.value = FILTER_OPS.includes(filter.op) ? filter.op : "in";
  const holder = make("span");
  const row = make("div", {className: "filter"}, member, " ", op, " ", holder, " ",
    make("button", {type: "button", textContent: "remove", onclick: () => row.remove()}));
  const values = () => {
    const wanted = filter.values || [];
    if (op.value === "in" || op.value === "not_in") {
      const select = make("select", {multiple: true, size: 4, className: "filter-values"});
      holder.replaceChildren(select);
      const path = `/v1/sources/${encodeURIComponent(source.name)}/dimensions/` +
                   `${encodeURIComponent(member.value)}/values?limit=200`;
      api("GET", path).then(answer => {
        // null (a row without a match through a join) is no value to pick: `in` never matches it
        const found = answer.values.filter(v => v !== null).map(String);
        const options = [...new Set([...found, ...wanted.map(String)])];
        select.replaceChildren(...options.map(v => make("option", {value: v, selected: wanted.map(String).includes(v)}, v)));
      }).catch(e => showError(e.message));
    } else {
      holder.replaceChildren(make("input", {className: "filter-text", value: wanted[0] || "", size: 14}));
    }
  };
  member.onchange = () => { filter = {member: member.value, op: op.value, values: []}; values(); };
  op.onchange = () => { filter = {member: member.value, op: op.value, values: filter.values}; values(); };
  values();
  return row;
}

function readFilters() {
  return [...document.querySelectorAll("#filters .filter")].map(row => {
    const member = row.querySelector(".filter-member").value;
    const op = row.querySelector(".filter-op").value;
    const select = row.querySelector(".filter-values");
    const text = row.querySelector(".filter-text");
    const values = select ? [...select.selectedOptions].map(o => o.value)
                          : (text && text.value ? [text.value] : []);
    return {member, op, values};
  });
}

function readForm() {
  const checked = id => [...$(id).querySelectorAll("input:checked")].map(i => i.value);
  const kind = document.querySelector("input[name=range-kind]:checked").value;
  return {
    source: $("source").value, measures: checked("measures"), dimensions: checked("dimensions"),
    grain: $("grain").value, compare: $("compare").value, tz: $("tz").value.trim(),
    from: kind === "absolute" ? $("from").value.trim() : "",
    to: kind === "absolute" ? $("to").value.trim() : "",
    range: kind === "relative" ? $("range").value.trim() : "",
    filters: readFilters(), order: $("order").value.trim(), limit: $("limit").value.trim(),
    raw: $("raw").checked,
  };
}

function writeForm(state) {
  $("source").value = state.source || META.sources[0].name;
  fillMembers(state);
  $("compare").value = state.compare || "";
  $("tz").value = state.tz;
  $("from").value = state.from;
  $("to").value = state.to;
  $("range").value = state.range;
  const kind = state.range ? "relative" : (state.from || state.to ? "absolute" : "all");
  document.querySelector(`input[name=range-kind][value=${kind}]`).checked = true;
  $("order").value = state.order;
  $("limit").value = state.limit || "1000";
  $("raw").checked = state.raw;
}

// ---- results --------------------------------------------------------------------------

function renderResults(answer, explain, roundTripMs, state) {
  const meta = answer.meta;
  const source = META.sources.find(s => s.name === meta.source);
  const time = source && source.time && meta.columns.includes(source.time.name) && state.grain ? source.time.name : null;
  const aggregates = new Set([...source.measures, ...source.metrics].map(m => m.name));
  const measures = meta.columns.filter(c => aggregates.has(c));
  // a comparison's columns (m__compare, m__change, m__change_ratio) are not dimensions
  const compared = new Set(measures.flatMap(m => COMPARED.map(suffix => m + suffix)));
  const dims = meta.columns.filter(c => !aggregates.has(c) && !compared.has(c) && c !== time);
  SemanticChart.render($("chart"), answer.data, measures, time, dims, Boolean(state.compare));

  const stats = meta.statistics;
  $("timing").textContent = `${meta.rows} row(s) in ${meta.elapsed_ms} ms` +
    (stats && stats.elapsed_ms !== null ? ` (ClickHouse ${stats.elapsed_ms} ms, read ${stats.rows_read} rows, ${stats.bytes_read} bytes)` : "") +
    `; ${roundTripMs.toFixed(1)} ms in the browser` + (meta.truncated ? "; truncated at the limit" : "");
  $("chosen-rollup").textContent = explain.rollup || "the raw table";
  $("tables").replaceChildren(...meta.tables.map(t => make("li", {}, t)));
  const est = explain.estimate || {};
  $("estimate").textContent = `Estimated before running: ${est.read_bytes ?? "?"} bytes (planner), ` +
    `${est.rows ?? "?"} rows (ClickHouse EXPLAIN ESTIMATE).`;
  $("candidates").tBodies[0].replaceChildren(...explain.candidates.map(c => make("tr",
    {className: c.chosen ? "chosen" : ""},
    make("td", {}, c.rollup), make("td", {}, c.chosen ? "chosen" : (c.usable ? "usable" : c.reason)),
    make("td", {className: "num"}, cellText(c.read_bytes)), make("td", {className: "num"}, cellText(c.rows)),
    make("td", {}, c.detail))));
  $("pieces").replaceChildren(...explain.pieces.map(p => make("li", {},
    `${p.rollup || "raw"} (${p.table}): ${p.from || "…"} to ${p.to || "…"}`)));
  $("sql").textContent = explain.sql;
  $("parameters").textContent = JSON.stringify(explain.parameters);
  $("row-count").textContent = `(${meta.rows})`;
  const table = $("result-table");
  table.tHead.replaceChildren(make("tr", {}, ...meta.columns.map(c => make("th", {}, c))));
  table.tBodies[0].replaceChildren(...answer.data.map(row => make("tr", {},
    ...meta.columns.map(c => make("td", {className: typeof row[c] === "number" ? "num" : ""}, cellText(row[c]))))));
  $("results").hidden = false;
}

async function run(state) {
  showError("");
  if (!state.measures.length && !state.dimensions.length) {
    $("results").hidden = true;
    return;
  }
  const body = toBody(state);
  const started = performance.now();
  try {
    const [answer, explain] = await Promise.all([api("POST", "/v1/query", body), api("POST", "/v1/explain", body)]);
    renderResults(answer, explain, performance.now() - started, state);
  } catch (e) {
    $("results").hidden = true;
    showError(e.message);
  }
  // how many queries have been answered (or refused): lets a test wait for the view
  document.body.dataset.runs = String(Number(document.body.dataset.runs || 0) + 1);
}

async function startExplore() {
  $("explore-view").hidden = false;
  $("nav-explore").className = "current";
  $("source").replaceChildren(...META.sources.map(s => make("option", {value: s.name}, s.name)));
  if (Intl.supportedValuesOf) {
    $("zones").replaceChildren(...Intl.supportedValuesOf("timeZone").map(z => make("option", {value: z})));
  }
  $("source").onchange = () => fillMembers({...readUrl(), source: $("source").value, measures: [], dimensions: [], filters: []});
  $("add-filter").onclick = () => $("filters").append(filterRow({}));
  $("query-form").onsubmit = event => {
    event.preventDefault();
    const state = readForm();
    const url = toUrl(state);
    if (url !== location.pathname + location.search) history.pushState(null, "", url);
    run(state);
  };
  window.onpopstate = () => { const state = readUrl(); writeForm(state); run(state); };
  const state = readUrl();
  writeForm(state);
  document.body.dataset.ready = "1";
  await run(state);
}

// ---- the model page -------------------------------------------------------------------

function tableOf(headers, rows) {
  return make("table", {}, make("thead", {}, make("tr", {}, ...headers.map(h => make("th", {}, h)))),
    make("tbody", {}, ...rows.map(r => make("tr", {}, ...r.map(c => c instanceof Node ? make("td", {}, c) : make("td", {}, cellText(c)))))));
}

function endpointLink(endpoint) {
  const source = META.sources.find(s => s.name === endpoint.source);
  const aggregates = new Set([...source.measures, ...source.metrics].map(m => m.name));
  const members = Object.values(endpoint.fields);
  const time = source.time ? source.time.name : null;
  const byField = endpoint.fields;
  const order = endpoint.order.map(o => {
    const [field, direction] = o.split(" ");
    return (direction === "desc" ? "-" : "") + (byField[field] || field);
  });
  return toUrl({
    source: source.name, measures: members.filter(m => aggregates.has(m)),
    dimensions: members.filter(m => !aggregates.has(m) && m !== time), grain: endpoint.grain || "",
    tz: "", from: "", to: "", range: "",
    filters: endpoint.filters.map(f => ({member: f.member, op: {eq: "in", ne: "not_in"}[f.op] || f.op, values: f.values})),
    order: order.join(","), limit: endpoint.limit ? String(endpoint.limit) : "1000", raw: false,
  });
}

function startModel() {
  $("model-view").hidden = false;
  $("nav-model").className = "current";
  const out = $("model");
  for (const s of META.sources) {
    const key = s.primary_key && s.primary_key.length ? `; primary key ${s.primary_key.join(", ")}` : "";
    const joins = s.joins || [];
    out.append(make("h2", {}, `Source ${s.name}`),
      make("p", {}, `Table ${s.table}; time column ${s.time ? `${s.time.name} (${s.time.type})` : "none"}; zone ${s.timezone}${key}.`),
      ...(joins.length ? [make("h3", {}, "Joins"), tableOf(["name", "source", "keys", "relationship"],
        joins.map(j => [j.name, j.source, Object.entries(j.keys || {}).map(([own, other]) => `${own} = ${j.source}.${other}`).join(", "),
                        j.relationship]))] : []),
      make("h3", {}, "Measures"),
      tableOf(["name", "agg", "exact", "exactness", "description"], s.measures.map(m => [m.name, m.agg, m.exact ? "yes" : "no", m.exactness, m.description])),
      make("h3", {}, "Metrics"),
      tableOf(["name", "sql", "exact", "exactness", "description"], s.metrics.map(m => [m.name, m.sql, m.exact ? "yes" : "no", m.exactness, m.description])),
      make("h3", {}, "Dimensions"),
      tableOf(["name", "joined through", "type", "sql", "description"],
        s.dimensions.map(d => [d.name, joinPath(d), d.type, d.sql, d.description])),
      make("h3", {}, "Rollups"),
      tableOf(["name", "grain", "dimensions", "measures", "ready", "rows", "bytes", "table"],
        s.rollups.map(r => [r.name, r.grain || "", r.dimensions.join(", "), r.measures.join(", "), r.ready ? "ready" : "not built", r.rows, r.bytes, r.table])));
  }
  out.append(make("h2", {}, "Endpoints"),
    tableOf(["path", "source", "returns", "description", ""], META.endpoints.map(e => [
      make("a", {href: e.path}, e.path), e.source, e.returns, e.description,
      make("a", {href: endpointLink(e), className: "open-in-explore"}, "open in explore")])));
  document.body.dataset.ready = "1";
}

async function start() {
  $("key-box").hidden = !sessionStorage.getItem(KEY_STORE);
  $("api-key").value = sessionStorage.getItem(KEY_STORE) || "";
  $("api-key").onchange = () => {
    sessionStorage.setItem(KEY_STORE, $("api-key").value.trim());
    location.reload();
  };
  try {
    META = await api("GET", "/v1/meta");
  } catch (e) {
    showError(`cannot read the model: ${e.message}`);
    return;
  }
  if (location.pathname.replace(/\/$/, "") === "/explore/model") startModel();
  else await startExplore();
}

start();
