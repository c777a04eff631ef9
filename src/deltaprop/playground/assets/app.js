// deltaprop playground: the page. Plain JavaScript, no build step, nothing from a CDN.
// The server trains (the library itself); this page sends settings and commands as JSON POSTs
// and draws what the server streams (server-sent events): weights, regions, losses.
"use strict";

const $ = (id) => document.getElementById(id);
const KEYS = ["hidden", "activation", "output_activation", "loss", "init", "mode", "batch_size", "optimizer",
  "lr", "momentum", "opt_param", "schedule", "stall", "val_split", "epochs", "seed"];
const NUMERIC = { batch_size: "int", lr: "float", momentum: "float", stall: "int", val_split: "float",
  epochs: "int", seed: "int" };
const COLORS = { pos: "#1f6fd1", neg: "#e07b18", batch: "#c8c8c8", running: "#e07b18", train: "#1f6fd1",
  val: "#2a9d3a", sel: "#d10fa8" };
const CLASS_COLORS = ["#e07b18", "#1f6fd1", "#2a9d3a", "#9b3fc0", "#c0392b", "#16a3a3", "#7a6a1b", "#555"];

const st = {
  sid: null, meta: null, setup: null, frame: null, upd: [], hist: null, selected: null,
  dirty: false, csvText: null, csvName: null, stats: { fps: 0, ups: 0, frames: 0, events: 0, busyMs: 0 },
  upsWindow: [], source: null,
};
window.pgStats = st.stats; // read by the browser tests

// ------------------------------------------------------------------ language
// The page's texts are English in this file and in index.html; tr() looks each up in the page's
// catalog (GET /api/page-catalog: {English: translation}, from locale/LANG/LC_MESSAGES/playground.po)
// and fills its {fields}. The language: the address's lang=, else the server's --lang.
let CATALOG = {}, LANG = "en";
function tr(msg, fields) {
  const text = CATALOG[msg] || msg;
  return fields ? text.replace(/\{(\w+)\}/g, (m, k) => (k in fields ? fields[k] : m)) : text;
}
const norm = (html) => html.replace(/\s+/g, " ").trim();
function translateStatic() {
  document.documentElement.lang = LANG;
  document.querySelectorAll("[data-i18n]").forEach((e) => {
    const key = norm(e.innerHTML);
    if (CATALOG[key]) e.innerHTML = CATALOG[key];
  });
  for (const attr of ["title", "placeholder"]) {
    document.querySelectorAll(`[${attr}]`).forEach((e) => {
      const key = norm(e.getAttribute(attr));
      if (CATALOG[key]) e.setAttribute(attr, CATALOG[key]);
    });
  }
}
async function loadLanguage(lang) {
  LANG = lang;
  CATALOG = lang === "en" ? {} : await api(`/api/page-catalog?lang=${encodeURIComponent(lang)}`);
  translateStatic();
  $("lang").value = lang;
}
function hashLang() {
  return new URLSearchParams(location.hash.slice(1)).get("lang");
}

// ------------------------------------------------------------------ helpers
function showError(msg) {
  const el = $("error");
  if (!msg) { el.hidden = true; el.textContent = ""; return; }
  el.hidden = false; el.textContent = msg;
}
async function api(path, body) {
  const headers = { "X-Deltaprop-Lang": LANG };
  const opts = body === undefined ? { headers } : { method: "POST",
    headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
  let res;
  try { res = await fetch(path, opts); } catch (e) { throw new Error(tr("the playground server does not answer (was it stopped?)")); }
  const answered = tr("the server answered {status}", { status: res.status });
  const data = await res.json().catch(() => ({ error: answered }));
  if (!res.ok || data.error) throw new Error(data.error || answered);
  return data;
}
const fmt = (v, d = 4) => (v === null || v === undefined || Number.isNaN(v)) ? "–"
  : (Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0)) ? v.toExponential(d - 1) : (+v.toPrecision(d)).toString();
const fmtFull = (v) => (v === null || v === undefined) ? "–" : (+v.toPrecision(9)).toString();
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));

function sessionId() {
  let sid = sessionStorage.getItem("deltaprop-playground-sid");
  if (!sid) {
    sid = Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
    sessionStorage.setItem("deltaprop-playground-sid", sid);
  }
  return sid;
}
const base = () => `/api/session/${st.sid}`;

// ------------------------------------------------------------------ settings form
function fillSelect(id, values, auto) {
  const el = $(id);
  el.innerHTML = (auto ? `<option value="">${auto}</option>` : "") +
    values.map((v) => `<option value="${esc(v)}">${esc(v)}</option>`).join("");
}
// One activation selector per hidden layer; s-activation (hidden) holds the setting: one name
// where all agree (the same run as before per-layer choices existed), else one per layer.
function buildActivations(value) {
  const n = parseHidden().length, box = $("activations");
  const given = String(value || "").split(",").filter(Boolean);
  const names = Array.from({ length: n }, (_, i) => given.length === n ? given[i] : (given[0] || "tanh"));
  box.innerHTML = names.map((a, i) => `<label><span>${esc(tr("Activation of layer {n}", { n: i + 1 }))}</span> ` +
    `<select id="s-act-${i}" data-layer="${i}"></select></label>`).join("");
  names.forEach((a, i) => { fillSelect(`s-act-${i}`, st.meta.choices.activations.filter((c) => c !== "softmax")); $(`s-act-${i}`).value = a; });
  box.querySelectorAll("select").forEach((e) => e.addEventListener("change", syncActivation));
  syncActivation();
}
function syncActivation() {
  const names = [...$("activations").querySelectorAll("select")].map((e) => e.value);
  if (names.length) $("s-activation").value = new Set(names).size === 1 ? names[0] : names.join(",");
}
function parseHidden() {
  return $("s-hidden").value.split(",").map((x) => x.trim()).filter(Boolean);
}
function setForm(data, s) {
  $("s-data").value = data;
  for (const k of KEYS) {
    const el = $("s-" + k);
    let v = s[k];
    if (Array.isArray(v)) v = v.join(",");
    el.value = v === null || v === undefined ? "" : v;
  }
  buildActivations($("s-activation").value);
  onFormChange();
}
function readForm() {
  const s = {};
  for (const k of KEYS) {
    const raw = $("s-" + k).value.trim();
    if (raw === "") { if (k === "hidden") s[k] = ""; continue; }
    if (NUMERIC[k]) { const n = Number(raw); s[k] = Number.isFinite(n) ? n : raw; }
    else if (k === "opt_param") s[k] = raw.split(",").map((x) => x.trim()).filter(Boolean);
    else s[k] = raw;
  }
  return s;
}
function onFormChange() {
  const data = $("s-data").value;
  $("csv-box").hidden = data !== "csv";
  $("data-help").textContent = st.meta ? st.meta.datasets[data] || "" : "";
  $("batch-label").style.opacity = $("s-mode").value === "minibatch" ? 1 : 0.45;
}
function writeHash(data, s) {
  const p = new URLSearchParams({ data });
  if (LANG !== "en") p.set("lang", LANG);
  for (const [k, v] of Object.entries(s)) p.set(k, Array.isArray(v) ? v.join(",") : v);
  history.replaceState(null, "", "#" + p.toString());
  $("ex-link").href = location.href;
}
function readHash() {
  if (location.hash.length < 2) return null;
  const p = new URLSearchParams(location.hash.slice(1));
  const out = { data: p.get("data"), settings: {} };
  for (const k of KEYS) if (p.has(k)) out.settings[k] = p.get(k);
  return out.data ? out : null;
}

async function loadDefaults(data) {
  const d = await api(`/api/defaults?data=${encodeURIComponent(data)}`);
  const s = {}; for (const k of KEYS) s[k] = d[k];
  setForm(data, s);
}

async function apply() {
  const data = $("s-data").value;
  const settings = readForm();
  const body = { data, settings };
  if (data === "csv") {
    if (!st.csvText) { showError(tr("Choose a CSV file first (two numeric columns and a target column).")); return; }
    body.csv = { text: st.csvText, name: st.csvName, x: $("csv-x").value, y: $("csv-y").value,
      target: $("csv-target").value };
  }
  try {
    const setup = await api(base() + "/configure", body);
    showError(null);
    writeHash(data, settings);
    onSetup(setup);
  } catch (e) { showError(e.message); }
}

async function onCsvFile() {
  const file = $("csv-file").files[0];
  if (!file) return;
  if (file.size > 1000000) { showError(tr("{file}: {size} bytes; the playground takes CSV files up to 1,000,000 bytes", { file: file.name, size: file.size.toLocaleString() })); return; }
  st.csvText = await file.text(); st.csvName = file.name;
  try {
    const { columns } = await api("/api/csv-columns", { text: st.csvText });
    for (const id of ["csv-x", "csv-y", "csv-target"]) fillSelect(id, columns);
    $("csv-x").value = columns[0]; $("csv-y").value = columns[1] || columns[0];
    $("csv-target").value = columns[columns.length - 1];
    showError(null);
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ controls
async function control(action) {
  try {
    await api(base() + "/control", { action, rate: Number($("speed").value) });
    showError(null);
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ the stream
function connect() {
  if (st.source) st.source.close();
  const src = new EventSource(base() + `/events?lang=${LANG}`);
  st.source = src;
  src.addEventListener("setup", (ev) => {
    const setup = JSON.parse(ev.data);
    if (!setup.ready) { apply(); return; } // a new session (first visit, or the server restarted)
    onSetup(setup);
    const s = setup.settings; setForm(setup.data, s); writeHash(setup.data, readForm());
  });
  src.addEventListener("frame", (ev) => {
    const t0 = performance.now();
    onFrame(JSON.parse(ev.data));
    st.stats.busyMs += performance.now() - t0; // the page's own work, for bench/playground_page.py
  });
  src.onerror = () => { st.stats.disconnected = (st.stats.disconnected || 0) + 1; };
}

function onSetup(setup) {
  st.setup = setup; st.upd = []; st.frame = null; st.upsWindow = [];
  st.hist = { epoch: [], loss: [], loss_running: [], val_loss: [], accuracy: [], val_accuracy: [], lr: [],
    updates: [], samples: [] };
  buildNetwork();
  fillSelect("ws-param", setup.param_names, tr("(click one in the network)"));
  const two = setup.sizes[0] === 2;
  $("regions").style.display = two ? "" : "none";
  $("regions-caption").textContent = two ? tr("Decision regions: the network's output over the input plane ({legend}). " +
    "Dots: training samples (hollow: validation); ringed: the next update's batch.", { legend: legend(setup) })
    : tr("Decision regions need 2 inputs; this data set has {n}.", { n: setup.sizes[0] });
  $("stat-acc-box").style.display = setup.classes ? "" : "none";
  $("ex-model").href = base() + `/export/model.npz?lang=${LANG}`;
  $("ex-config").href = base() + `/export/config.toml?lang=${LANG}`;
  $("ex-data").href = base() + `/export/data?lang=${LANG}`;
  $("ex-data-box").hidden = ["xor", "spirals", "parity", "encoder"].includes(setup.data);
  $("ex-cmd").textContent = "deltaprop train --config playground.toml --out model.npz";
  if (st.selected) $("ws-body").innerHTML = `<p class="help">${esc(tr("A new run: click a weight or unit again."))}</p>`;
  st.selected = null;
  st.dirty = true;
}

const COLOR_NAMES = () => [tr("orange"), tr("blue"), tr("green"), tr("purple"), tr("red"), tr("teal"), tr("olive"), tr("grey")];
function legend(setup) {
  const c = setup.classes, outs = setup.sizes[setup.sizes.length - 1];
  if (!c) return tr("blue: high output, orange: low");
  if (outs === 1) return tr("blue: {high}, orange: {low}", { high: c[1], low: c[0] });
  const colors = COLOR_NAMES();
  return c.map((name, i) => `${colors[i % colors.length]}: ${name}`).join(", ");
}

function onFrame(f) {
  if (!f.ready) return;
  st.stats.events++;
  for (const u of f.updates) st.upd.push(u);
  for (const k of Object.keys(st.hist)) for (const v of f.history[k] || []) st.hist[k].push(v);
  const now = performance.now();
  st.upsWindow.push([now, f.update]);
  while (st.upsWindow.length > 2 && now - st.upsWindow[0][0] > 2000) st.upsWindow.shift();
  const [t0, u0] = st.upsWindow[0];
  st.stats.ups = now > t0 + 200 ? (f.update - u0) / ((now - t0) / 1000) : 0;
  if (!f.playing) { st.upsWindow = [[now, f.update]]; st.stats.ups = 0; }
  st.stats.update = f.update;
  st.frame = f;
  st.dirty = true;
  if (st.selected && !f.playing && st.selected.version !== f.version && st.selected.update !== f.update) {
    explainSelected(); // stepping: the worksheet follows the next update
  }
}

// ------------------------------------------------------------------ drawing (once per animation frame)
let fpsCount = 0, fpsT0 = performance.now();
function tick(t) {
  fpsCount++;
  if (t - fpsT0 >= 1000) {
    st.stats.fps = fpsCount * 1000 / (t - fpsT0); fpsCount = 0; fpsT0 = t;
    $("stat-fps").textContent = Math.round(st.stats.fps);
    $("stat-ups").textContent = Math.round(st.stats.ups).toLocaleString();
  }
  st.stats.frames++;
  if (st.dirty && st.setup && st.frame) {
    const t0 = performance.now();
    st.dirty = false; draw();
    st.stats.busyMs += performance.now() - t0;
  }
  requestAnimationFrame(tick);
}

function draw() {
  const f = st.frame, s = st.setup;
  $("stat-epoch").textContent = tr("{epoch} of {total}", { epoch: f.epoch, total: f.epochs_total });
  $("stat-update").textContent = f.update.toLocaleString();
  $("stat-samples").textContent = f.samples.toLocaleString();
  const h = st.hist;
  const lastLoss = h.loss.length ? h.loss[h.loss.length - 1] : (st.upd.length ? st.upd[st.upd.length - 1][1] : null);
  $("stat-loss").textContent = fmt(lastLoss);
  $("stat-acc").textContent = h.accuracy.length && h.accuracy[h.accuracy.length - 1] !== null
    ? (100 * h.accuracy[h.accuracy.length - 1]).toFixed(1) + "%" : "–";
  $("play").hidden = f.playing; $("pause").hidden = !f.playing;
  for (const id of ["play", "step", "step-epoch"]) $(id).disabled = f.finished;
  let next = "";
  if (f.error) next = tr("Stopped: {error}", { error: f.error });
  else if (f.finished) next = tr("Finished: epochs run: {n}. Raise Epochs and press Apply, or Reset.", { n: f.epoch });
  else if (f.pending) {
    const p = f.pending;
    const fields = { update: p.update_in_epoch, total: p.updates_per_epoch, epoch: p.epoch, sample: p.rows[0], n: p.batch,
      rows: p.rows.slice(0, 6).join(", #") + (p.batch > 6 ? ", ..." : "") };
    next = p.batch === 1 ? tr("Next: update {update} of {total} in epoch {epoch}, on sample #{sample}.", fields)
      : tr("Next: update {update} of {total} in epoch {epoch}, on a batch of samples ({n}: #{rows}).", fields);
  }
  for (const ev of f.events.slice(-2)) next += "  [" + tr("{event} at epoch {epoch}: {detail}", ev) + "]";
  $("next").textContent = next;
  if (s.sizes[0] === 2 && f.regions) drawRegions(f, s);
  updateNetwork(f);
  drawLoss();
}

function drawRegions(f, s) {
  const cv = $("regions"), ctx = cv.getContext("2d");
  const g = Math.round(Math.sqrt(f.regions.length));
  const img = new ImageData(g, g);
  const multi = s.sizes[s.sizes.length - 1] > 1;
  const vals = f.regions;
  let lo = 0, hi = 1;
  if (!multi) {
    let mn = Infinity, mx = -Infinity;
    for (const v of vals) { if (v < mn) mn = v; if (v > mx) mx = v; }
    if (mn < -0.01 || mx > 1.01) { lo = Math.min(mn, -1); hi = Math.max(mx, 1); }
  }
  // Colours parsed once, bytes written in place: parsing and an array per cell took most of a
  // frame's script time (bench/playground_page.py).
  const pos = hex(COLORS.pos), neg = hex(COLORS.neg), classRGB = CLASS_COLORS.map(hex), px8 = img.data;
  for (let i = 0; i < vals.length; i++) {
    let rgb, a;
    if (multi) {
      const c = Math.floor(vals[i]), conf = vals[i] - c;
      rgb = classRGB[c % classRGB.length]; a = 60 + 150 * conf;
    } else {
      const v = Math.max(0, Math.min(1, (vals[i] - lo) / (hi - lo)));
      const w = Math.abs(v - 0.5) * 2;
      rgb = v >= 0.5 ? pos : neg; a = 40 + 170 * w;
    }
    px8[4 * i] = rgb[0]; px8[4 * i + 1] = rgb[1]; px8[4 * i + 2] = rgb[2]; px8[4 * i + 3] = a;
  }
  if (!st.off || st.off.width !== g) { st.off = document.createElement("canvas"); st.off.width = g; st.off.height = g; }
  st.off.getContext("2d").putImageData(img, 0, 0);
  ctx.clearRect(0, 0, cv.width, cv.height);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, cv.width, cv.height);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(st.off, 0, 0, cv.width, cv.height);
  // The samples do not move during a run: drawn once per run on a layer of their own (hundreds
  // of arcs each frame took most of a frame's time, bench/playground_page.py).
  ctx.drawImage(dotsLayer(s, cv), 0, 0);
  const [x0, x1, y0, y1] = s.extent;
  const px = (x) => (x - x0) / (x1 - x0) * cv.width, py = (y) => (y1 - y) / (y1 - y0) * cv.height;
  if (f.pending) {
    ctx.strokeStyle = "#111"; ctx.lineWidth = 1.5;
    for (const i of f.pending.rows) { ctx.beginPath(); ctx.arc(px(s.points[i][0]), py(s.points[i][1]), 7, 0, 2 * Math.PI); ctx.stroke(); }
  }
  ctx.fillStyle = "#333"; ctx.font = "11px sans-serif";
  const fn = s.feature_names || ["x", "y"];
  ctx.fillText(`${fn[0]} →`, cv.width - 60, cv.height - 6); ctx.fillText(`↑ ${fn[1]}`, 4, 12);
}
function dotsLayer(s, cv) {
  if (st.dots && st.dots.setup === s) return st.dots.canvas;
  const c = document.createElement("canvas"); c.width = cv.width; c.height = cv.height;
  const ctx = c.getContext("2d");
  const [x0, x1, y0, y1] = s.extent;
  const px = (x) => (x - x0) / (x1 - x0) * cv.width, py = (y) => (y1 - y) / (y1 - y0) * cv.height;
  const dot = (p, lab, hollow) => {
    ctx.beginPath(); ctx.arc(px(p[0]), py(p[1]), 3.5, 0, 2 * Math.PI);
    const col = s.classes && s.sizes[s.sizes.length - 1] > 1 ? CLASS_COLORS[lab % CLASS_COLORS.length]
      : (lab ? COLORS.pos : COLORS.neg);
    if (hollow) { ctx.strokeStyle = col; ctx.lineWidth = 1.5; ctx.stroke(); }
    else { ctx.fillStyle = col; ctx.fill(); ctx.strokeStyle = "#222"; ctx.lineWidth = 0.8; ctx.stroke(); }
  };
  s.points.forEach((p, i) => dot(p, s.labels[i], false));
  (s.val_points || []).forEach((p, i) => dot(p, s.val_labels[i], true));
  st.dots = { setup: s, canvas: c };
  return c;
}
function hex(c) { return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)); }

// ------------------------------------------------------------------ the network diagram
const SVGNS = "http://www.w3.org/2000/svg";
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}
function unitPos(sizes, l, j, W, H) {
  const x = 40 + l * (W - 80) / (sizes.length - 1);
  const n = sizes[l], gap = Math.min(40, (H - 50) / Math.max(n, 1));
  const y = H / 2 - (n - 1) * gap / 2 + j * gap;
  return [x, y];
}
function buildNetwork() {
  const svg = $("net"); svg.innerHTML = "";
  const s = st.setup, sizes = s.sizes, W = +svg.getAttribute("width"), H = +svg.getAttribute("height");
  st.lines = [];
  const gLines = el("g", {}, svg), gHits = el("g", {}, svg), gUnits = el("g", {}, svg);
  for (let l = 0; l < sizes.length - 1; l++) {
    for (let i = 0; i < sizes[l]; i++) for (let j = 0; j < sizes[l + 1]; j++) {
      const [x1, y1] = unitPos(sizes, l, i, W, H), [x2, y2] = unitPos(sizes, l + 1, j, W, H);
      const name = `W${l + 1}[${i},${j}]`;
      const line = el("line", { x1, y1, x2, y2, class: "w", "data-param": name }, gLines);
      const hit = el("line", { x1, y1, x2, y2, class: "hit", "data-param": name }, gHits);
      const t = el("title", {}, hit); t.textContent = name;
      hit.addEventListener("click", () => select(name));
      hit.addEventListener("mouseenter", () => line.classList.add("hover"));
      hit.addEventListener("mouseleave", () => line.classList.remove("hover"));
      st.lines.push([line, l, i, j]);
    }
  }
  for (let l = 0; l < sizes.length; l++) {
    for (let j = 0; j < sizes[l]; j++) {
      const [x, y] = unitPos(sizes, l, j, W, H);
      const name = l === 0 ? null : `b${l}[${j}]`;
      const c = el("circle", { cx: x, cy: y, r: 9, class: "unit", "data-param": name || "", "data-unit": `${l},${j}` }, gUnits);
      const t = el("title", {}, c);
      t.textContent = l === 0 ? tr("input x[{j}] ({name})", { j, name: (s.feature_names || [])[j] || "" })
        : tr("unit {j} of layer {l}: click for its bias {bias} and delta", { j, l, bias: `b${l}[${j}]` });
      if (name) c.addEventListener("click", () => select(name));
      if (l === 0) { const tx = el("text", { x: x - 30, y: y + 4 }, gUnits); tx.textContent = `x[${j}]`; }
    }
    const [x] = unitPos(sizes, l, 0, W, H);
    const lab = el("text", { x: x - 16, y: H - 6 }, gUnits);
    lab.textContent = l === 0 ? tr("input") : s.activations[l - 1];
  }
}
function updateNetwork(f) {
  let mx = 1e-9;
  for (const [W] of f.weights) for (const row of W) for (const v of row) mx = Math.max(mx, Math.abs(v));
  for (const [line, l, i, j] of st.lines) {
    const v = f.weights[l][0][i][j];
    line.setAttribute("stroke", v >= 0 ? COLORS.pos : COLORS.neg);
    line.setAttribute("stroke-width", (0.5 + 6 * Math.abs(v) / mx).toFixed(2));
    line.setAttribute("stroke-opacity", (0.35 + 0.65 * Math.abs(v) / mx).toFixed(2));
  }
}

// ------------------------------------------------------------------ charts
function drawChart(cv, series, opts = {}) {
  const labels = series.filter((s) => s.label).length;
  const ctx = cv.getContext("2d"), W = cv.width, H = cv.height, L = 48, B = 22, T = 8 + 13 * labels, R = 8;
  ctx.clearRect(0, 0, W, H);
  const tx = opts.logX ? (v) => Math.log10(Math.max(v, 1)) : (v) => v;
  const ty = opts.logY ? (v) => Math.log10(Math.max(v, 1e-12)) : (v) => v;
  let xs = [], ys = [];
  for (const s of series) for (let i = 0; i < s.x.length; i++) if (s.y[i] !== null && Number.isFinite(s.y[i])) { xs.push(tx(s.x[i])); ys.push(ty(s.y[i])); }
  if (!xs.length) { ctx.fillStyle = "#999"; ctx.fillText(opts.empty || tr("no data yet"), L + 10, H / 2); return; }
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const v of xs) { if (v < x0) x0 = v; if (v > x1) x1 = v; }
  for (const v of ys) { if (v < y0) y0 = v; if (v > y1) y1 = v; }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) { const pad = Math.abs(y0) * 0.1 || 0.5; y0 -= pad; y1 += pad; } // a constant, e.g. a fixed learning rate
  const X = (v) => L + (tx(v) - x0) / (x1 - x0) * (W - L - R), Y = (v) => T + (y1 - ty(v)) / (y1 - y0) * (H - T - B);
  ctx.strokeStyle = "#ccc"; ctx.lineWidth = 1; ctx.strokeRect(L, T, W - L - R, H - T - B);
  ctx.fillStyle = "#555"; ctx.font = "10px sans-serif";
  const lab = (v, log) => log ? fmt(Math.pow(10, v), 2) : fmt(v, 3);
  ctx.fillText(lab(y1, opts.logY), 2, T + 8); ctx.fillText(lab(y0, opts.logY), 2, H - B);
  ctx.fillText(lab(x0, opts.logX), L, H - 8); ctx.fillText(lab(x1, opts.logX), W - R - 40, H - 8);
  if (opts.xlabel) ctx.fillText(opts.xlabel, W / 2 - 30, H - 8);
  for (const s of series) {
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 1.5; ctx.beginPath();
    let started = false;
    for (let i = 0; i < s.x.length; i++) {
      if (s.y[i] === null || !Number.isFinite(s.y[i])) continue;
      const px = X(s.x[i]), py = Y(s.y[i]);
      if (started) ctx.lineTo(px, py); else { ctx.moveTo(px, py); started = true; }
    }
    ctx.stroke();
    if (s.label) { ctx.fillStyle = s.color; ctx.font = "11px sans-serif"; ctx.fillText(s.label, L + 6, 12 + 13 * series.indexOf(s)); }
  }
}
// Every k-th point, so that a long run costs a frame no more than about n points do.
function thin(arr, n = 1200) {
  if (arr.length <= n) return arr;
  const k = Math.ceil(arr.length / n), out = [];
  for (let i = 0; i < arr.length; i += k) out.push(arr[i]);
  out.push(arr[arr.length - 1]);
  return out;
}
function drawLoss() {
  const h = st.hist, upd = thin(st.upd), ix = thin([...h.updates.keys()]);
  const pick = (a) => ix.map((i) => a[i]);
  drawChart($("loss"), [
    { x: upd.map((u) => u[0]), y: upd.map((u) => u[1]), color: COLORS.batch, width: 1 },
    { x: pick(h.updates), y: pick(h.loss_running), color: COLORS.running },
    { x: pick(h.updates), y: pick(h.loss), color: COLORS.train, width: 2 },
    { x: pick(h.updates), y: pick(h.val_loss), color: COLORS.val, width: 2 },
  ], { logY: true, xlabel: tr("updates"), empty: tr("press Step or Play") });
}

// ------------------------------------------------------------------ the worksheet
function select(param) {
  st.selected = { param };
  $("ws-param").value = param;
  document.querySelectorAll("#net .sel").forEach((e) => e.classList.remove("sel"));
  document.querySelectorAll(`#net [data-param="${CSS.escape(param)}"]`).forEach((e) => e.classList.add("sel"));
  explainSelected();
}
async function explainSelected() {
  const sel = st.selected;
  if (!sel) return;
  if (st.setup && !st.setup.explainable) {
    $("ws-body").innerHTML = `<p class="help">${esc(tr("This network has more than 500 parameters; deltaprop explain traces at most 500. Use fewer units."))}</p>`;
    return;
  }
  sel.version = st.frame ? st.frame.version : null;
  sel.update = st.frame ? st.frame.update : null;
  try {
    const r = await api(base() + "/explain", { param: sel.param });
    if (st.selected !== sel) return;
    renderWorksheet(sel.param, r);
  } catch (e) { showError(e.message); }
}
// A row's formula with its arguments filled in: by name, or by value (negative ones in brackets).
function fill(row, show) {
  return row.formula.replace(/\$(\d+)/g, (_, i) => {
    const a = row.args[+i];
    if (!a) return "?";
    const t = show(a);
    return typeof a.value === "number" && a.value < 0 && show !== nameOf ? `(${t})` : t;
  });
}
const nameOf = (a) => a.name;
function renderWorksheet(param, r) {
  const rows = {}, order = [];
  for (const sec of r.trace.sections) for (const row of sec.rows) { rows[row.name] = { ...row, section: sec.title, sectionId: sec.id }; order.push(row.name); }
  const isBias = param.startsWith("b");
  const unit = param.replace(/^[Wb](\d+)\[(?:\d+,)?(\d+)\]$/, "$1[$2]");
  const grad = rows[`dE_total/d${param}`], upd = rows[`${param}+`];
  const focus = new Set([grad && grad.name, upd && upd.name, `delta${unit}`, `net${unit}`, `out${unit}`]);
  const keep = new Set(), stack = [...focus].filter(Boolean);
  while (stack.length) {
    const n = stack.pop();
    if (keep.has(n) || !rows[n]) continue;
    // Other parameters' values are in the formulas that use them: listing them all again
    // would bury the chain.
    if (rows[n].sectionId === "parameters" && n !== param) continue;
    keep.add(n);
    for (const a of rows[n].args || []) stack.push(a.name);
  }
  const pos = r.position;
  const where = pos ? tr("update {update} of {total} in epoch {epoch}", { update: pos.update_in_epoch, total: pos.updates_per_epoch, epoch: pos.epoch })
    : tr("after the last update");
  let html = `<h3>${esc(tr("{param}: the next update ({where})", { param, where }))}</h3>`;
  const io = { sample: r.sample, n: r.batch, input: r.input.map((v) => fmt(v, 5)).join(", "),
    target: r.target.map((v) => fmt(v, 5)).join(", ") };
  html += `<p>${esc(r.batch === 1 ? tr("The next update uses sample #{sample}: input ({input}), target ({target}).", io)
    : tr("The next update uses a batch of samples ({n}); shown: its first, #{sample}: input ({input}), target ({target}).", io))}</p>`;
  if (grad) {
    html += `<div class="chain" id="ws-chain">${esc(grad.name)} = ${esc(fill(grad, nameOf))}<br>` +
      `&nbsp;= ${esc(fill(grad, (a) => fmtFull(a.value)))} = <b data-name="${esc(grad.name)}" data-value="${grad.value}">${fmtFull(grad.value)}</b></div>`;
  }
  if (upd) {
    html += `<div class="chain">${esc(tr("gradient descent on this one sample (what explain shows):"))} ${esc(upd.name)} = ${esc(fill(upd, nameOf))}` +
      `<br>&nbsp;= ${esc(fill(upd, (a) => fmtFull(a.value)))} = <b>${fmtFull(upd.value)}</b></div>`;
  }
  const a = r.actual, k = a.names.indexOf(param);
  if (k >= 0) {
    const w = st.frame ? currentWeight(param) : null;
    html += `<div class="chain" id="ws-actual">${esc(tr("this run's update ({optimizer}, {mode} mode, the mean gradient of the batch; samples: {n}):", { optimizer: r.optimizer, mode: r.mode, n: r.batch }))} ` +
      `${esc(tr("gradient"))} ${fmtFull(a.gradient[k])}, ${esc(tr("change"))} ` +
      `<b data-name="delta ${esc(param)}" data-value="${a.delta[k]}">${fmtFull(a.delta[k])}</b>` +
      (w !== null ? `, ${esc(param)} ${fmtFull(w)} &rarr; ${fmtFull(w + a.delta[k])}` : "") + `</div>`;
  }
  const state = r.internals.state;
  const names = Object.keys(state).filter((n) => state[n].value !== undefined);
  if (names.length) html += `<p>${esc(tr("Optimizer state of {param}:", { param }))} ` + names.map((n) => `${esc(n)} = ${fmtFull(state[n].value)}`).join(", ") + "</p>";
  html += `<p class="help">${esc(tr("Below: every number that leads to the gradient and update of {param}, in the order explain computes them " +
    "(highlighted: the unit's own values, its gradient and its update). Formulas are shown with names, then with the values.", { param }))}</p>`;
  html += `<table class="ws" id="ws-table">`;
  let section = null;
  for (const n of order) {
    if (!keep.has(n)) continue;
    const row = rows[n];
    if (row.section !== section) { section = row.section; html += `<tr class="section"><td colspan="3">${esc(section)}</td></tr>`; }
    const formula = row.formula ? fill(row, nameOf) : "";
    const nums = row.formula ? fill(row, (a) => fmtFull(a.value)) : "";
    html += `<tr class="${focus.has(n) ? "focus" : ""}" data-name="${esc(n)}" data-value="${row.value}"><td>${esc(n)}</td>` +
      `<td class="v">${fmtFull(row.value)}</td><td>${formula ? esc(formula) + "<br><span class=help>= " + esc(nums) + "</span>" : ""}` +
      `${row.note ? ` <span class="help">[${esc(row.note)}]</span>` : ""}</td></tr>`;
  }
  html += `</table><details><summary>${esc(tr("The whole worksheet (what deltaprop explain prints for this model and sample)"))}</summary><pre id="ws-text">${esc(r.text)}</pre></details>`;
  $("ws-body").innerHTML = html;
}
function currentWeight(param) {
  const m = param.match(/^([Wb])(\d+)\[(\d+)(?:,(\d+))?\]$/);
  if (!m) return null;
  const layer = st.frame.weights[+m[2] - 1];
  return m[1] === "W" ? layer[0][+m[3]][+m[4]] : layer[1][+m[3]];
}

// ------------------------------------------------------------------ tabs: compare, optimizer, gradcheck
function showTab(name) {
  document.querySelectorAll(".tabs button").forEach((b) => b.classList.toggle("on", b.dataset.tab === name));
  document.querySelectorAll(".tab").forEach((t) => { t.hidden = t.id !== "tab-" + name; });
  if (name === "optimizer") refreshInternals();
}
async function runCompare() {
  $("cmp-info").textContent = tr("training three runs ...");
  try {
    const r = await api(base() + "/compare", { epochs: Number($("cmp-epochs").value) || $("cmp-epochs").value });
    const cols = { stochastic: COLORS.neg, minibatch: COLORS.pos, batch: COLORS.val };
    const series = (key) => Object.entries(r.modes).filter(([, m]) => !m.error)
      .map(([mode, m]) => ({ x: m[key], y: m.loss, color: cols[mode], label: `${mode}${mode === "minibatch" ? " k=" + m.batch : ""}: ${tr("loss")} ${fmt(m.final_loss)}`, width: 2 }));
    drawChart($("cmp-updates"), series("updates"), { logY: true, logX: true, xlabel: tr("updates (log)") });
    drawChart($("cmp-samples"), series("samples"), { logY: true, xlabel: tr("samples seen") });
    const ok = Object.entries(r.modes).filter(([, m]) => !m.error);
    const same = new Set(ok.map(([, m]) => m.initial_weights)).size === 1;
    const cf = { epochs: r.epochs, samples: r.samples, hash: ok.length ? ok[0][1].initial_weights : "-",
      first: ok.length ? ok[0][1].first_order.slice(0, 5).join(", #") : "" };
    let info = tr("Epochs: {epochs}; samples: {samples}.", cf) + " " +
      (same ? tr("Initial weights identical in all modes (hash {hash}).", cf) : tr("Initial weights DIFFER (hash {hash}).", cf)) + " " +
      tr("Epoch 1 starts with samples #{first}.", cf) +
      (ok.find(([n]) => n === "batch") ? " " + tr("Batch mode: all samples at once.") : "");
    for (const [mode, m] of Object.entries(r.modes)) if (m.error) info += ` ${mode}: ${m.error}.`;
    $("cmp-info").textContent = info;
  } catch (e) { $("cmp-info").textContent = ""; showError(e.message); }
}
async function refreshInternals() {
  if ($("tab-optimizer").hidden || !st.setup) return;
  try {
    const r = await api(base() + "/internals", { param: st.selected ? st.selected.param : null });
    let html = `<p><b>${esc(r.optimizer)}</b>: ${esc(tr("updates: {t}, learning rate {lr}", { t: r.t, lr: fmtFull(r.lr) }))}; ` +
      Object.entries(r.hyper).filter(([k, v]) => v && k !== "lr").map(([k, v]) => `${esc(k)} ${v}`).join(", ") + "</p>";
    const names = Object.keys(r.state);
    if (names.length) {
      html += `<table class="ws" id="opt-state"><tr class="section"><td>${esc(tr("state"))}</td><td>${esc(tr("min"))}</td><td>${esc(tr("median"))}</td><td>${esc(tr("max"))}</td><td>${st.selected ? esc(st.selected.param) : esc(tr("(click a weight)"))}</td></tr>` +
        names.map((n) => `<tr data-name="${esc(n)}"><td>${esc(n)}</td><td class="v">${fmt(r.state[n].min)}</td><td class="v">${fmt(r.state[n].median)}</td>` +
          `<td class="v">${fmt(r.state[n].max)}</td><td class="v">${r.state[n].value !== undefined ? fmtFull(r.state[n].value) : ""}</td></tr>`).join("") + "</table>";
      html += `<p class="help">${esc(tr("RPROP: step_size is each weight's own step; Adam: m and v are the moving averages of the gradient and its square; momentum: velocity."))}</p>`;
    } else html += `<p class="help">${esc(tr("Plain gradient descent keeps no state: each update is −lr × gradient."))}</p>`;
    html += `<p>${esc(tr("Events (stalls, learning-rate changes, divergence):"))} ${r.events.length ? r.events.map((e) => esc(tr("epoch {epoch}: {event} ({detail})", e))).join("; ") : esc(tr("none yet"))}.</p>`;
    html += `<p class="help">${esc(tr("The learning rate per epoch (a schedule or the bold driver changes it):"))}</p>`;
    $("opt-body").innerHTML = html;
    drawChart($("lr-chart"), [{ x: r.lr_history.map((_, i) => i + 1), y: r.lr_history, color: COLORS.train }], { xlabel: tr("epoch") });
  } catch (e) { showError(e.message); }
}
async function runGradcheck() {
  $("gc-out").textContent = tr("checking ...");
  try { const r = await api(base() + "/gradcheck", {}); $("gc-out").textContent = r.summary; }
  catch (e) { $("gc-out").textContent = ""; showError(e.message); }
}

// A link (or an address typed into this tab): the data set's defaults, then the link's settings.
async function applyLink(link) {
  try { await loadDefaults(link.data); } catch (e) { showError(e.message); return; }
  setForm(link.data, { ...readForm(), ...link.settings });
  await apply();
}

// ------------------------------------------------------------------ start
async function start() {
  st.sid = sessionId();
  try { st.meta = await api("/api/meta"); } catch (e) { showError(e.message); return; }
  const asked = hashLang();
  const lang = st.meta.languages.includes(asked) ? asked : st.meta.lang;
  if (lang !== "en") {
    try { await loadLanguage(lang); st.meta = await api("/api/meta"); } catch (e) { showError(e.message); }
  }
  $("lang").addEventListener("change", () => {
    // The address keeps the language; the page reloads in it and finds its run again.
    const p = new URLSearchParams(location.hash.slice(1));
    p.set("lang", $("lang").value);
    history.replaceState(null, "", "#" + p.toString());
    sessionStorage.setItem("deltaprop-playground-keep", "1"); // the same run, in the other language
    location.reload();
  });
  const c = st.meta.choices;
  $("s-data").innerHTML = Object.keys(st.meta.datasets).map((d) => `<option value="${d}">${d}</option>`).join("");
  fillSelect("s-output_activation", c.activations, tr("(suits the loss)"));
  fillSelect("s-loss", c.losses, tr("(suits the task)"));
  fillSelect("s-mode", c.modes);
  fillSelect("s-optimizer", c.optimizers);
  fillSelect("s-schedule", c.schedules, tr("none"));
  $("s-data").addEventListener("change", async () => {
    try { await loadDefaults($("s-data").value); if ($("s-data").value !== "csv") await apply(); } catch (e) { showError(e.message); }
  });
  for (const k of KEYS) $("s-" + k).addEventListener("change", onFormChange);
  $("s-hidden").addEventListener("input", () => buildActivations($("s-activation").value));
  $("csv-file").addEventListener("change", onCsvFile);
  $("apply").addEventListener("click", apply);
  $("reset").addEventListener("click", apply);
  $("play").addEventListener("click", () => control("play"));
  $("pause").addEventListener("click", () => control("pause"));
  $("step").addEventListener("click", () => control("step"));
  $("step-epoch").addEventListener("click", () => control("epoch"));
  $("speed").addEventListener("change", () => control("speed"));
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  $("cmp-run").addEventListener("click", runCompare);
  $("ws-param").addEventListener("change", () => { if ($("ws-param").value) select($("ws-param").value); });
  $("gc-run").addEventListener("click", runGradcheck);
  setInterval(refreshInternals, 1500);
  window.addEventListener("hashchange", () => { const link = readHash(); if (link) applyLink(link); });
  const fromLink = readHash();
  const keep = sessionStorage.getItem("deltaprop-playground-keep") === "1";
  sessionStorage.removeItem("deltaprop-playground-keep");
  const kept = keep ? await api(base() + "/setup").catch(() => ({ ready: false })) : { ready: false };
  if (kept.ready) {
    // the stream's setup event fills the form with the run's settings
  } else if (fromLink) {
    await applyLink(fromLink);
  } else {
    const setup = await api(base() + "/setup").catch(() => ({ ready: false }));
    if (!setup.ready) { await loadDefaults("circles"); await apply(); }
  }
  connect();
  requestAnimationFrame(tick);
}
start();
