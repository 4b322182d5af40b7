// gridcosim view: draws the feeder coloured by voltage, slot by slot (no libraries).
// The data is the JSON document of gridcosim.outputs.view_data.page_data.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("gridcosim-data").textContent);
  const M = D.meta;
  const SVG = "http://www.w3.org/2000/svg";
  const SLOTS = D.slot_labels.length;
  const NO_VALUE = "#d9d9d9", BELOW = "#7a0177", ABOVE = "#081d58";
  // Colour stops over t in [0, 1]: low limit red, reference green, high limit blue.
  const STOPS = [[0, [215, 48, 39]], [0.25, [253, 174, 97]], [0.5, [26, 152, 80]],
                 [0.75, [116, 173, 209]], [1, [49, 54, 149]]];
  const state = { slot: 0, variable: 0, phase: "lowest", scale: "limits", timer: null };
  const $ = (id) => document.getElementById(id);
  let circles = [], markers = [], radius = 1, fontSize = 1;

  function node(tag, attrs, text, ns) {
    const e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const svg = (tag, attrs, text) => node(tag, attrs, text, SVG);
  const fmt = (v, digits) => (v === null || v === undefined ? "\u2014" : v.toFixed(digits));
  const signed = (v) => (v === null || v === undefined ? "\u2014"
    : (v > 0 ? "+" : "") + v.toFixed(1));

  // ------------------------------------------------------------------ header
  function header() {
    $("title").textContent = "gridcosim run: " + (M.scenario || "?");
    $("description").textContent = M.description || "";
    const cost = M.total_cost_usd === null ? "\u2014" : M.total_cost_usd.toFixed(2) + " USD";
    const facts = [["status", M.status_text, "badge " + (M.status || "")],
      ["slots", String(M.slots)], ["windows", String(M.windows)], ["total cost", cost],
      ["seed", M.seed === null ? "\u2014" : String(M.seed)], ["network", M.network || "?"],
      ["limits", M.v_min_pu + " \u2013 " + M.v_max_pu + " p.u."], ["file", M.file],
      ["created", M.created_utc || "?"], ["gridcosim", M.gridcosim_version || "?"]];
    for (const [k, v, cls] of facts) {
      const div = node("div");
      div.append(node("dt", {}, k), node("dd", cls ? { class: cls } : {}, v));
      $("facts").append(div);
    }
  }

  // ------------------------------------------------------------------ values
  function phaseKeys() { return Object.keys(D.voltages[state.variable].values); }

  // The shown value of every bus at a slot, and its phase: [[value, phase], ...].
  function slotValues(slot) {
    const values = D.voltages[state.variable].values;
    const keys = state.phase === "lowest" ? phaseKeys() : [state.phase];
    return D.buses.map((_, i) => {
      let best = null, where = null;
      for (const k of keys) {
        const v = values[k] ? values[k][slot][i] : null;
        if (v !== null && (best === null || v < best)) { best = v; where = k; }
      }
      return [best, where];
    });
  }

  function runRange() {
    let lo = Infinity, hi = -Infinity;
    for (let s = 0; s < SLOTS; s++) {
      for (const [v] of slotValues(s)) {
        if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      }
    }
    if (!isFinite(lo)) return [M.v_min_pu, M.v_max_pu];
    return hi - lo < 1e-4 ? [lo - 5e-5, hi + 5e-5] : [lo, hi];
  }

  function domain() {
    return state.scale === "range" ? runRange() : [M.v_min_pu, M.v_max_pu];
  }

  function position(v, lo, hi) {  // t in [0, 1]; the reference at 0.5 on the limits scale
    if (state.scale === "limits") {
      const ref = M.v_ref_pu;
      return v <= ref ? 0.5 * (v - lo) / Math.max(ref - lo, 1e-9)
        : 0.5 + 0.5 * (v - ref) / Math.max(hi - ref, 1e-9);
    }
    return (v - lo) / (hi - lo);
  }

  function rgb(t) {
    t = Math.min(1, Math.max(0, t));
    let i = 1;
    while (i < STOPS.length - 1 && STOPS[i][0] < t) i++;
    const [t0, c0] = STOPS[i - 1], [t1, c1] = STOPS[i];
    const f = (t - t0) / (t1 - t0);
    const c = c0.map((x, j) => Math.round(x + f * (c1[j] - x)));
    return "rgb(" + c.join(",") + ")";
  }

  function colour(v, lo, hi) {
    if (v === null) return NO_VALUE;
    if (v < M.v_min_pu - 1e-6) return BELOW;
    if (v > M.v_max_pu + 1e-6) return ABOVE;
    return rgb(position(v, lo, hi));
  }

  // ------------------------------------------------------------------ map
  function placed() {
    return D.buses.map((b, i) => [b, i]).filter(([b]) => b.x !== null && b.y !== null);
  }

  function medianLine() {
    const lengths = D.lines.map(([a, b]) => Math.hypot(D.buses[a].x - D.buses[b].x,
                                                       D.buses[a].y - D.buses[b].y))
      .filter((d) => d > 0).sort((p, q) => p - q);
    return lengths.length ? lengths[Math.floor(lengths.length / 2)] : 0;
  }

  function drawMap() {
    const box = $("map-box");
    if (D.layout.note) box.append(node("p", { class: "note", id: "layout-note" }, D.layout.note));
    if (!D.layout.drawable) {
      box.append(node("h2", { class: "table-title" }, "Lowest buses this slot"),
                 node("div", { id: "bus-table" }));
      return;
    }
    const buses = placed();
    const xs = buses.map(([b]) => b.x), ys = buses.map(([b]) => -b.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const size = Math.max(x1 - x0, y1 - y0, 1e-9), pad = 0.04 * size;
    radius = Math.min(Math.max(0.22 * medianLine(), size / 400), size / 90);
    fontSize = size / 75;
    const view = [x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad];
    const map = svg("svg", { id: "map", viewBox: view.join(" "), role: "img",
                             "aria-label": "feeder coloured by voltage" });
    const lines = svg("g", { id: "lines", "stroke-width": radius * 0.6 });
    for (const [a, b] of D.lines) {
      lines.append(svg("line", { x1: D.buses[a].x, y1: -D.buses[a].y,
                                 x2: D.buses[b].x, y2: -D.buses[b].y }));
    }
    const group = svg("g", { id: "buses", "stroke-width": radius * 0.25 });
    circles = buses.map(([b, i]) => {
      const c = svg("circle", { cx: b.x, cy: -b.y, r: radius, "data-bus": b.id,
                                "data-index": i, fill: NO_VALUE });
      if (b.id === D.root) c.setAttribute("class", "root");
      group.append(c);
      return [c, i];
    });
    map.append(lines, group, drawMarkers());
    box.append(map, node("span", { class: "map-hint" }, "wheel: zoom \u00b7 drag: pan \u00b7 " +
                         "double-click: reset"));
    zoomAndPan(map, view);
    group.addEventListener("mouseover", (e) => {
      if (e.target.dataset.index !== undefined) showBus(Number(e.target.dataset.index));
    });
  }

  function drawMarkers() {
    const g = svg("g", { id: "markers", "font-size": fontSize, "stroke-width": fontSize / 5 });
    const index = Object.fromEntries(D.buses.map((b, i) => [b.id, i]));
    markers = D.exchanges.rows.map((row) => {
      const b = D.buses[index[row.bus]];
      if (!b || b.x === null) return null;
      const x = b.x, y = -b.y, s = Math.max(radius * 1.8, fontSize * 0.45);
      const mark = svg("path", { d: "M" + x + " " + (y - s) + " l" + s + " " + s + " l" + -s +
                                 " " + s + " l" + -s + " " + -s + " z", stroke: "#000",
                                 "stroke-width": s / 8 });
      const label = svg("text", { x: x + 1.3 * s, y: y + 0.35 * fontSize });
      g.append(mark, label);
      return { row: row, mark: mark, label: label };
    }).filter((m) => m !== null);
    return g;
  }

  function zoomAndPan(map, home) {
    let view = home.slice(), drag = null;
    const apply = () => map.setAttribute("viewBox", view.join(" "));
    const toMap = (e) => {
      const r = map.getBoundingClientRect(), k = Math.max(view[2] / r.width, view[3] / r.height);
      return [k, view[0] + (e.clientX - r.left) * k, view[1] + (e.clientY - r.top) * k];
    };
    map.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [, mx, my] = toMap(e), f = e.deltaY < 0 ? 0.8 : 1.25;
      view = [mx - (mx - view[0]) * f, my - (my - view[1]) * f, view[2] * f, view[3] * f];
      apply();
    }, { passive: false });
    map.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY, view.slice()];
                                               map.classList.add("dragging"); });
    window.addEventListener("mouseup", () => { drag = null; map.classList.remove("dragging"); });
    window.addEventListener("mousemove", (e) => {
      if (!drag) return;
      const [k] = toMap(e);
      view = [drag[2][0] - (e.clientX - drag[0]) * k, drag[2][1] - (e.clientY - drag[1]) * k,
              view[2], view[3]];
      apply();
    });
    map.addEventListener("dblclick", () => { view = home.slice(); apply(); });
  }

  // ------------------------------------------------------------------ panels
  function legend() {
    const [lo, hi] = domain(), box = $("legend");
    box.querySelector("svg")?.remove();
    box.querySelector("p")?.remove();
    const w = 320, s = svg("svg", { viewBox: "0 0 " + w + " 78", id: "legend-scale" });
    const grad = svg("linearGradient", { id: "legend-gradient" });
    for (let k = 0; k <= 20; k++) {
      const v = lo + (hi - lo) * k / 20;
      grad.append(svg("stop", { offset: k / 20, "stop-color": rgb(position(v, lo, hi)) }));
    }
    const defs = svg("defs");
    defs.append(grad);
    s.append(defs, svg("rect", { x: 10, y: 4, width: w - 20, height: 16,
                                 fill: "url(#legend-gradient)", stroke: "#888" }));
    const ticks = [lo, hi].concat(state.scale === "limits" ? [M.v_ref_pu] : []);
    for (const v of ticks) {
      const x = 10 + (w - 20) * position(v, lo, hi);
      const anchor = v === lo ? "start" : v === hi ? "end" : "middle";
      s.append(svg("line", { x1: x, x2: x, y1: 20, y2: 26, stroke: "#333" }),
               svg("text", { x: x, y: 38, "text-anchor": anchor, "font-size": 11 },
                   v.toFixed(4)));
    }
    [[BELOW, "below " + M.v_min_pu], [ABOVE, "above " + M.v_max_pu], [NO_VALUE, "no value"]]
      .forEach(([c, text], k) => {
        s.append(svg("rect", { x: 10 + k * 105, y: 52, width: 14, height: 14, fill: c }),
                 svg("text", { x: 28 + k * 105, y: 63, "font-size": 11 }, text));
      });
    box.append(s, node("p", { class: "muted" }, state.scale === "limits"
      ? "Scale: the scenario's limits, green at the reference " + M.v_ref_pu + " p.u."
      : "Scale: lowest to highest value of the run (this voltage and phase choice)."));
  }

  function summary(values) {
    const box = $("summary");
    box.replaceChildren();
    const shown = values.map(([v, p], i) => [v, p, i]).filter(([v]) => v !== null);
    if (!shown.length) { box.append(node("p", { class: "muted" }, "No values in this slot.")); return; }
    shown.sort((a, b) => a[0] - b[0]);
    const out = shown.filter(([v]) => v < M.v_min_pu - 1e-6 || v > M.v_max_pu + 1e-6).length;
    const where = ([v, p, i]) => fmt(v, 4) + " p.u. at bus " + D.buses[i].id +
      (p && p !== "bus" ? " phase " + p : "");
    box.append(node("div", {}, "lowest " + where(shown[0])),
               node("div", {}, "highest " + where(shown[shown.length - 1])),
               node("div", {}, out + " of " + shown.length + " buses outside [" + M.v_min_pu +
                    ", " + M.v_max_pu + "]"));
  }

  function busTable(values) {  // where the feeder cannot be drawn: the lowest buses
    const rows = values.map(([v, p], i) => [v, p, i]).filter(([v]) => v !== null)
      .sort((a, b) => a[0] - b[0]).slice(0, 20);
    const table = node("table"), head = node("tr");
    for (const h of ["bus", "phase", "|V| p.u."]) head.append(node("th", {}, h));
    table.append(head);
    const [lo, hi] = domain();
    for (const [v, p, i] of rows) {
      const tr = node("tr"), cell = node("td", {}, fmt(v, 4));
      cell.style.borderRight = "14px solid " + colour(v, lo, hi);
      tr.append(node("td", {}, D.buses[i].id), node("td", {}, p === "bus" ? "" : p), cell);
      table.append(tr);
    }
    $("bus-table").replaceChildren(table);
  }

  function showBus(i) {
    if (!D.voltages.length) return;
    const values = D.voltages[state.variable].values, b = D.buses[i];
    const parts = Object.keys(values).map((k) => (k === "bus" ? "" : k + " ") +
                                                 fmt(values[k][state.slot][i], 4));
    $("hover").textContent = "bus " + b.id + (b.id === D.root ? " (root)" : "") + ": " +
      parts.join(", ") + " p.u.";
    $("hover").dataset.bus = String(i);
  }

  function exchangeTable() {
    const ex = D.exchanges, box = $("exchanges");
    $("exchange-title").textContent = ex.title;
    box.replaceChildren();
    if (!ex.rows.length) { box.append(node("p", { class: "muted" }, "none in this run")); return; }
    const table = node("table"), head = node("tr");
    for (const h of ["name", "bus", "P kW"].concat(ex.q ? ["Q kvar"] : [])) {
      head.append(node("th", {}, h));
    }
    table.append(head);
    for (const row of ex.rows) {
      const tr = node("tr"), p = row.p ? row.p[state.slot] : null;
      tr.append(node("td", {}, row.name), node("td", {}, row.bus ?? "?"),
                node("td", { class: p > 1e-9 ? "export" : p < -1e-9 ? "import" : "" }, signed(p)));
      if (ex.q) tr.append(node("td", {}, signed(row.q ? row.q[state.slot] : null)));
      table.append(tr);
    }
    box.append(table);
  }

  function updateMarkers() {
    for (const m of markers) {
      const p = m.row.p ? m.row.p[state.slot] : null;
      m.mark.setAttribute("fill", p > 1e-9 ? "#2ca02c" : p < -1e-9 ? "#ff7f0e" : "#bbbbbb");
      m.label.textContent = m.row.name + " " + signed(p) + " kW";
    }
  }

  // ------------------------------------------------------------------ update
  function update() {
    $("slot-label").textContent = !SLOTS ? "no slots" : "slot " + state.slot + " / " + (SLOTS - 1) + " \u00b7 " +
      (D.slot_labels[state.slot] || "");
    exchangeTable();
    updateMarkers();
    if (!SLOTS) {
      $("summary").replaceChildren(node("p", { class: "note" }, "The file holds no committed slot."));
      return;
    }
    if (!D.voltages.length) return;
    const values = slotValues(state.slot), [lo, hi] = domain();
    for (const [c, i] of circles) {
      const v = values[i][0];
      c.setAttribute("fill", colour(v, lo, hi));
      c.setAttribute("stroke", v !== null && (v < M.v_min_pu - 1e-6 || v > M.v_max_pu + 1e-6)
        ? "#000" : (D.buses[i].id === D.root ? "#000" : "#555"));
    }
    summary(values);
    if ($("bus-table")) busTable(values);
    if ($("hover").dataset.bus) showBus(Number($("hover").dataset.bus));
  }

  function setSlot(slot) {
    state.slot = Math.max(0, Math.min(SLOTS - 1, slot));
    $("slot").value = String(state.slot);
    update();
  }

  function togglePlay() {
    if (state.timer !== null) {
      clearInterval(state.timer);
      state.timer = null;
      $("play").textContent = "\u25b6 Play";
      return;
    }
    state.timer = setInterval(() => setSlot((state.slot + 1) % Math.max(SLOTS, 1)), 700);
    $("play").textContent = "\u23f8 Pause";
  }

  function controls() {
    $("slot").max = String(Math.max(SLOTS - 1, 0));
    $("slot").addEventListener("input", (e) => setSlot(Number(e.target.value)));
    $("play").addEventListener("click", togglePlay);
    if (SLOTS < 2) $("play").disabled = true;
    D.voltages.forEach((v, i) => $("variable").append(node("option", { value: i }, v.label)));
    if (!D.voltages.length) $("variable").append(node("option", {}, "none recorded"));
    $("variable").addEventListener("change", (e) => { state.variable = Number(e.target.value);
                                                      phases(); legend(); update(); });
    $("phase").addEventListener("change", (e) => { state.phase = e.target.value;
                                                   legend(); update(); });
    $("scale").addEventListener("change", (e) => { state.scale = e.target.value;
                                                   legend(); update(); });
  }

  function phases() {
    const keys = D.voltages.length ? phaseKeys().filter((k) => k !== "bus") : [];
    $("phase-box").hidden = keys.length === 0;
    $("phase").replaceChildren(node("option", { value: "lowest" }, "lowest phase"),
      ...keys.map((k) => node("option", { value: k }, "phase " + k)));
    if (!keys.includes(state.phase)) state.phase = "lowest";
    $("phase").value = state.phase;
  }

  header();
  controls();
  phases();
  drawMap();
  if (D.voltages.length) {
    legend();
  } else {
    $("legend").append(node("p", { class: "note" }, "The file records no bus voltages."));
  }
  setSlot(0);
  window.gridcosimView = { setSlot: setSlot, state: state, data: D };
})();
