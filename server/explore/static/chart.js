// A small SVG chart, one panel per measure: a line per series (the other dimensions' values)
// over time buckets when the query has a grain, bars per category otherwise. Every value is
// one mark (circle.point or rect.bar) carrying its series, x and y in data attributes. With a
// comparison, each series has a compared twin (marks of class "compared").
"use strict";

const SemanticChart = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#2f6fdb", "#e0702b", "#2b9b5a", "#b8418f", "#7a5cd6", "#c9a227", "#1f9aa8",
                  "#d64545", "#5d6b7a", "#8c6d3f"];
  const W = 960, H = 220, M = {left: 70, right: 16, top: 12, bottom: 46};
  const COMPARED = " (compared)";  // the suffix of a compared series' key

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (lo === hi) { hi = lo + 1; }
    const raw = (hi - lo) / count;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map(f => f * power).find(s => s >= raw);
    const ticks = [];
    const first = Math.floor(lo / step), last = Math.ceil(hi / step);
    for (let i = first; i <= last; i++) ticks.push(+(i * step).toPrecision(12));
    return ticks;
  }

  function fmt(v) {
    const a = Math.abs(v);
    if (a >= 1e9) return (v / 1e9).toPrecision(3) + "G";
    if (a >= 1e6) return (v / 1e6).toPrecision(3) + "M";
    if (a >= 1e4) return (v / 1e3).toPrecision(3) + "k";
    return String(+v.toPrecision(4));
  }

  // One panel per measure (their scales differ), so each has its own axis. rows: answer
  // rows; measures: numeric members; time: the time column or null; dims: the other
  // dimensions (a line each over time, or the bars' categories).
  function render(container, rows, measures, time, dims, compared) {
    container.replaceChildren();
    for (const measure of measures) container.append(panel(rows, measure, time, dims, compared));
  }

  // compared: rows carry `${measure}__compare`, drawn as a dashed series ("... (compared)")
  // beside each series (lines), or a lighter bar beside each bar
  function panel(rows, measure, time, dims, compared) {
    const box = document.createElement("figure");
    box.className = "panel";
    box.append(Object.assign(document.createElement("figcaption"), {textContent: measure}));
    const series = new Map();  // key -> [{x, y}]
    const xs = [];
    const seen = new Set();
    for (const row of rows) {
      const label = dims.map(d => String(row[d])).join(" · ");
      const x = time ? String(row[time]) : (label || "total");
      if (!seen.has(x)) { seen.add(x); xs.push(x); }
      const key = time && label ? label : measure;
      if (!series.has(key)) series.set(key, []);
      if (typeof row[measure] === "number") series.get(key).push({x, y: row[measure]});
      const before = row[measure + "__compare"];
      if (compared) {
        if (!series.has(key + COMPARED)) series.set(key + COMPARED, []);
        if (typeof before === "number") series.get(key + COMPARED).push({x, y: before});
      }
    }
    if (time) xs.sort();
    const values = [...series.values()].flat().map(p => p.y);
    if (!values.length) {
      box.append(Object.assign(document.createElement("p"), {className: "muted", textContent: "no values"}));
      return box;
    }
    const ticks = niceTicks(Math.min(0, ...values), Math.max(0, ...values), 4);
    const lo = ticks[0], hi = ticks[ticks.length - 1];
    const plotW = W - M.left - M.right, plotH = H - M.top - M.bottom;
    const y = v => M.top + plotH - (v - lo) / (hi - lo || 1) * plotH;
    const svg = el("svg", {viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                           "data-kind": time ? "series" : "bars", "data-measure": measure});
    for (const t of ticks) {
      svg.append(el("line", {class: "grid", x1: M.left, x2: W - M.right, y1: y(t), y2: y(t)}));
      svg.append(el("text", {x: M.left - 6, y: y(t) + 4, "text-anchor": "end"}, fmt(t)));
    }
    svg.append(el("line", {class: "axis", x1: M.left, x2: W - M.right, y1: y(Math.max(lo, 0)), y2: y(Math.max(lo, 0))}));
    const keys = [...series.keys()];
    const own = keys.filter(k => !k.endsWith(COMPARED));
    const color = key => COLORS[own.indexOf(key.endsWith(COMPARED) ? key.slice(0, -COMPARED.length) : key) % COLORS.length];
    const labelEvery = Math.max(1, Math.ceil(xs.length / 12));
    if (time) {
      const x = i => M.left + (xs.length === 1 ? plotW / 2 : i / (xs.length - 1) * plotW);
      const index = new Map(xs.map((v, i) => [v, i]));
      xs.forEach((v, i) => {
        const anchor = xs.length > 1 && i === xs.length - 1 ? "end" : "middle";
        if (i % labelEvery === 0) svg.append(el("text", {x: x(i), y: H - M.bottom + 16, "text-anchor": anchor}, v.slice(0, 16)));
      });
      for (const [key, points] of series) {
        points.sort((a, b) => index.get(a.x) - index.get(b.x));
        const d = points.map((p, i) => `${i ? "L" : "M"}${x(index.get(p.x)).toFixed(1)},${y(p.y).toFixed(1)}`).join("");
        const dashed = key.endsWith(COMPARED);
        svg.append(el("path", {d, fill: "none", stroke: color(key), "stroke-width": 1.6,
                               "stroke-dasharray": dashed ? "4 3" : "none", "opacity": dashed ? 0.7 : 1}));
        for (const p of points) {
          const c = el("circle", {class: dashed ? "point compared" : "point", cx: x(index.get(p.x)), cy: y(p.y), r: 2.6, fill: color(key),
                                  "data-series": key, "data-x": p.x, "data-y": p.y});
          c.append(el("title", {}, `${key} ${p.x}: ${p.y}`));
          svg.append(c);
        }
      }
    } else {
      const band = plotW / xs.length;
      xs.forEach((v, i) => {
        if (i % labelEvery === 0) svg.append(el("text", {x: M.left + band * (i + 0.5), y: H - M.bottom + 16, "text-anchor": "middle"}, v.slice(0, 24)));
      });
      const bars = compared ? [[measure, 0.15, 0.35, 1], [measure + COMPARED, 0.5, 0.35, 0.45]]
                            : [[measure, 0.15, 0.7, 1]];
      for (const [key, left, width, opacity] of bars) {
        for (const p of series.get(key) || []) {
          const i = xs.indexOf(p.x);
          const top = Math.min(y(p.y), y(0)), height = Math.abs(y(p.y) - y(0));
          const r = el("rect", {class: key === measure ? "bar" : "bar compared",
                                x: M.left + band * (i + left), y: top, opacity,
                                width: Math.max(band * width, 1), height: Math.max(height, 0.5), fill: COLORS[0],
                                "data-series": key, "data-x": p.x, "data-y": p.y});
          r.append(el("title", {}, `${key} ${p.x}: ${p.y}`));
          svg.append(r);
        }
      }
    }
    box.append(svg);
    if ((time && keys.length > 1) || compared) {
      const legend = document.createElement("div");
      legend.className = "legend";
      for (const key of keys) {
        const item = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = color(key);
        item.append(swatch, key);
        legend.append(item);
      }
      box.append(legend);
    }
    return box;
  }

  return {render};
})();
