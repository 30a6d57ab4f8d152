// convnetpy studio: the page. It sends commands to api/... and draws what the server publishes on the ws feed.
// Arrays arrive as {shape, min, max, data}: data is base64 of uint8 levels between min and max (see views.py).
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN = new URLSearchParams(location.search).get("token");
const GREEN = "rgb(85,187,85)";  // ConvNetJS's colour for the true class

const page = {
  options: null,      // api/options
  setup: null,        // the run's facts ("setup" message)
  state: "idle",
  series: {x: [], loss: [], train: [], val: [], test: []},
  marks: [],
  charts: {},
  drawTimer: null,
};

// -- talking to the server ---------------------------------------------------------------------------------
async function api(path, body, type) {
  const headers = {};
  if (TOKEN) headers.Authorization = "token " + TOKEN;
  const init = {method: body === undefined ? "GET" : "POST", headers};
  if (body !== undefined) {
    headers["Content-Type"] = type || "application/json";
    init.body = type ? body : JSON.stringify(body);
  }
  const response = await fetch("api/" + path, init);
  const answer = response.headers.get("content-type")?.includes("json") ? await response.json() : {};
  if (!response.ok) {
    const error = new Error(answer.error || response.statusText);
    error.field = answer.field;
    throw error;
  }
  return answer;
}

function showError(error) {
  const box = {spec: "spec-error", dataset: "dataset-error", settings: "settings-error"}[error.field];
  if (box) {
    $(box).textContent = error.message;
    $(box).hidden = false;
  } else {
    say(error.message, true);
  }
}

function clearErrors() {
  for (const id of ["spec-error", "dataset-error", "settings-error"]) $(id).hidden = true;
  say("");
}

function say(text, bad) {
  $("message").textContent = text;
  $("message").classList.toggle("bad", !!bad);
}

function connect() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (TOKEN) url.searchParams.set("token", TOKEN);
  const ws = new WebSocket(url);
  ws.onmessage = (event) => receive(JSON.parse(event.data));
  ws.onclose = () => {
    setStatus("disconnected");
    setTimeout(connect, 1000);
  };
}

function receive(m) {
  const handlers = {hello, status: (s) => setStatus(s.state, s.message, s.seq), setup: onSetup, stats: onStats,
                    network: drawNetwork, tests: drawTests};
  handlers[m.type]?.(m);
}

function hello(m) {
  page.seq = undefined;  // perhaps a restarted server: its numbering starts again
  resetSeries();
  if (m.setup && m.setup.layers) onSetup(m.setup, true);
  addPoints(m.series || [], m.marks || []);
  if (m.stats && Object.keys(m.stats).length) showStats(m.stats);
  setStatus(m.status.state, m.status.message, m.status.seq);
}

// -- set up ---------------------------------------------------------------------------------------------
function specText(specs) {
  return "[\n" + specs.map((s) => "  " + JSON.stringify(s).replace(/,"/g, ', "').replace(/":/g, '": ')).join(",\n") + "\n]";
}

async function loadOptions() {
  const o = page.options = await api("options");
  for (const name of [...o.datasets, ...o.folders]) $("dataset").add(new Option(name, name));
  for (const name of Object.keys(o.models)) $("model").add(new Option(name, name));
  $("model").add(new Option("custom (edited)", "custom"));
  for (const name of o.optimizers) $("optimizer").add(new Option(name, name));
  $("dataset").value = o.datasets[0];
  chooseModel(o.suggested[o.datasets[0]] || Object.keys(o.models)[0]);
}

function chooseModel(name) {
  $("model").value = name;
  if (name !== "custom") $("spec").value = specText(page.options.models[name]);
  checkSpec();
}

let specTimer = null;
function checkSpec() {
  clearTimeout(specTimer);
  specTimer = setTimeout(async () => {
    try {
      const r = await api("validate", {specs: $("spec").value});
      $("spec-error").hidden = true;
      $("spec-info").textContent = `${r.layers.length} layers, ${r.params.toLocaleString()} parameters, input ${JSON.stringify(r.input_shape)}`;
    } catch (e) {
      if (e.field === "spec") showError(e); else say(e.message, true);
      $("spec-info").textContent = "";
    }
  }, 300);
}

function setupPayload() {
  const num = (id) => Number($(id).value);
  return {dataset: $("dataset").value, specs: $("spec").value, optimizer: $("optimizer").value, lr: num("lr"),
          momentum: num("momentum"), batch_size: num("batch_size"), weight_decay: num("weight_decay"),
          epochs: num("epochs"), nesterov: $("nesterov").checked, augment: $("augment").checked};
}

async function command(path, body) {
  clearErrors();
  try {
    const s = await api(path, body);
    if (s.state) setStatus(s.state, s.message, s.seq);
    return s;
  } catch (e) {
    showError(e);
  }
}

async function liveChange(key) {
  if (!["running", "paused", "finished", "stopped", "loaded"].includes(page.state)) return;
  const value = Number($(key).value);
  clearErrors();
  try {
    await api("settings", {[key]: value});
  } catch (e) {
    showError(e);
  }
}

// seq numbers the session's state changes: a status older than the one shown (an HTTP answer overtaken by the
// feed) is ignored. "disconnected" (no seq) always shows.
function setStatus(state, message, seq) {
  if (seq !== undefined) {
    if (seq < (page.seq ?? -1)) return;
    page.seq = seq;
  }
  page.state = state;
  $("status").textContent = state;
  $("status").className = "pill " + state;
  if (message) say(message, state === "failed");
  const training = state === "running" || state === "paused";
  $("start").disabled = training || state === "preparing" || state === "stopping";
  $("pause").disabled = !training;
  $("pause").textContent = state === "paused" ? "Resume" : "Pause";
  $("stop").disabled = !training;
  $("continue").disabled = !["stopped", "finished", "loaded"].includes(state);
  $("download").classList.toggle("disabled", !page.setup);
}

// The run's facts: from "hello" (quiet: the charts come with it) or a "setup" message (a fresh run or a loaded
// checkpoint clears the charts and brings its curves; a continued run keeps them).
function onSetup(s, quiet) {
  const newLayers = !page.setup || JSON.stringify(page.setup.layers) !== JSON.stringify(s.layers);
  page.setup = s;
  if (!quiet && s.fresh) {
    resetSeries();
    addPoints(s.series || [], s.marks || []);
  }
  for (const [key, value] of Object.entries(s.config || {})) {
    const input = $(key);
    if (!input) continue;
    if (input.type === "checkbox") input.checked = value; else input.value = value;
  }
  if (s.dataset) {
    if (![...$("dataset").options].some((o) => o.value === s.dataset)) $("dataset").add(new Option(s.dataset, s.dataset));
    $("dataset").value = s.dataset;
  }
  if (s.specs && (quiet || $("spec").value.trim() === "")) {  // a tab joining a run shows that run's net
    $("spec").value = specText(s.specs);
    $("model").value = "custom";
  }
  if (newLayers) buildLayers(s);
  $("draw-area").hidden = !s.digits;
  $("upload-hint").textContent = s.signals
    ? `A .npy array or a text file of ${s.input_shape[0] * s.input_shape[1]} numbers.`
    : `PNG, JPEG, GIF, BMP or WebP; resized to ${s.image_shape.slice(1).join("x")} ${s.image_shape[0] === 1 ? "grey" : "colour"}.`;
  $("download").classList.remove("disabled");
}

// -- statistics and charts ----------------------------------------------------------------------------------
const fmt = (v, digits = 4) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toPrecision(digits);
const pct = (v) => (v === null || v === undefined) ? "–" : (100 * v).toFixed(1) + "%";

function showStats(s) {
  const rows = [
    ["Forward time per example", s.forward_ms === undefined ? "–" : fmt(s.forward_ms, 3) + " ms", "forward"],
    ["Backprop time per example", s.backward_ms === undefined ? "–" : fmt(s.backward_ms, 3) + " ms", "backward"],
    ["Classification loss", fmt(s.loss), "loss"],
    ["L2 weight decay loss", fmt(s.decay_loss), "decay-loss"],
    ["Training accuracy", pct(s.train_accuracy), "train-accuracy"],
    ["Validation accuracy", pct(s.val_accuracy), "val-accuracy"],
    [`Test accuracy (last ${page.testWindow || "–"})`, pct(s.test_accuracy), "test-accuracy"],
    ["Examples seen", (s.examples_seen ?? 0).toLocaleString(), "examples-seen"],
    ["Images per second", s.images_per_second === undefined ? "–" : Math.round(s.images_per_second).toLocaleString(), "images-per-second"],
    ["Epochs done", `${s.epoch ?? 0} of ${s.epochs ?? "–"}`, "epoch"],
    ["Optimizer", `${s.optimizer ?? "–"}, lr ${fmt(s.lr, 3)}, momentum ${fmt(s.momentum, 3)}, batch ${s.batch_size ?? "–"}, decay ${fmt(s.weight_decay, 3)}`, "settings"],
  ];
  $("stats").dataset.state = s.state || "";  // the trainer's own state when these numbers were taken
  const body = $("stats").tBodies[0];
  body.replaceChildren(...rows.map(([name, value, id]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = `<th></th><td data-testid="${id}"></td>`;
    tr.cells[0].textContent = name;
    tr.cells[1].textContent = value;
    return tr;
  }));
}

function onStats(m) {
  showStats(m);
  addPoints(m.points || [], m.marks || []);
}

function resetSeries() {
  page.series = {x: [], loss: [], train: [], val: [], test: []};
  page.marks = [];
  redrawCharts();
}

function addPoints(points, marks) {
  const s = page.series;
  for (const p of points) {
    s.x.push(p.x);
    s.loss.push(p.loss ?? null);
    s.train.push(p.train_acc ?? null);
    s.val.push(p.val_acc ?? null);
    s.test.push(p.test_acc ?? null);
  }
  page.marks.push(...marks);
  if (points.length || marks.length) redrawCharts();
}

function chartWidth() {
  return Math.max(280, $("loss-chart").parentElement.clientWidth - 8);
}

function drawMarks(u) {
  const ctx = u.ctx;
  ctx.save();
  ctx.strokeStyle = "#7a5cc4";
  ctx.fillStyle = "#7a5cc4";
  ctx.setLineDash([4, 3]);
  ctx.font = `${11 * devicePixelRatio}px sans-serif`;
  for (const mark of page.marks) {
    const x = u.valToPos(mark.x, "x", true);
    if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.fillText(mark.label, x + 4, u.bbox.top + 12 * devicePixelRatio);
  }
  ctx.restore();
}

function makeCharts() {
  const axes = [{label: "examples seen"}, {}];
  const width = chartWidth();
  page.charts.loss = new uPlot({
    width, height: 200, scales: {x: {time: false}}, axes,
    series: [{label: "examples"}, {label: "training loss", stroke: "#c0392b", width: 1.5, spanGaps: true}],
    hooks: {draw: [drawMarks]},
  }, [[], []], $("loss-chart"));
  page.charts.accuracy = new uPlot({
    width, height: 200, scales: {x: {time: false}, y: {range: [0, 1]}}, axes,
    series: [{label: "examples"},
             {label: "training", stroke: "#2c7fb8", width: 1.5, spanGaps: true},
             {label: "validation", stroke: GREEN, width: 2, spanGaps: true, points: {show: true, size: 6}},
             {label: "test (rolling)", stroke: "#e67e22", width: 1.5, spanGaps: true}],
  }, [[], [], [], []], $("accuracy-chart"));
  addEventListener("resize", () => {
    for (const chart of Object.values(page.charts)) chart.setSize({width: chartWidth(), height: 200});
  });
}

function redrawCharts() {
  if (!page.charts.loss) return;
  const s = page.series;
  page.charts.loss.setData([s.x, s.loss]);
  page.charts.accuracy.setData([s.x, s.train, s.val, s.test]);
  const count = (a) => a.filter((v) => v !== null).length;
  $("loss-chart").dataset.points = count(s.loss);
  $("accuracy-chart").dataset.points = count(s.train) + count(s.val) + count(s.test);
  $("accuracy-chart").dataset.valPoints = count(s.val);
}

// -- pictures -----------------------------------------------------------------------------------------------
function levels(enc) {
  const raw = atob(enc.data);
  const out = new Uint8ClampedArray(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

// A grey (or RGB, channels first) picture of h x w pixels from levels at offset, drawn scale times larger.
function picture(values, offset, h, w, scale, rgb) {
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.style.width = w * scale + "px";
  canvas.style.height = h * scale + "px";
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const plane = h * w;
  for (let i = 0; i < plane; i++) {
    const r = values[offset + i];
    img.data[4 * i] = r;
    img.data[4 * i + 1] = rgb ? values[offset + plane + i] : r;
    img.data[4 * i + 2] = rgb ? values[offset + 2 * plane + i] : r;
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

// A line plot of n values (levels 0-255) at offset: 1D signals and 1D feature maps.
function linePlot(values, offset, n, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.className = "line";
  const ctx = canvas.getContext("2d");
  ctx.strokeStyle = "#2c7fb8";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < n; i++) {
    const x = n > 1 ? (i / (n - 1)) * (width - 4) + 2 : width / 2;
    const y = height - 2 - (values[offset + i] / 255) * (height - 4);
    if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y);
  }
  ctx.stroke();
  return canvas;
}

function scaleFor(h, w, target) {
  return Math.max(1, Math.min(8, Math.floor(target / Math.max(h, w))));
}

// An example as the dataset holds it: an image (C, H, W) or a signal (C, L).
function exampleCanvas(enc, target) {
  const v = levels(enc);
  if (enc.shape.length === 2) return linePlot(v, 0, enc.shape[1], target * 2, target);
  const [c, h, w] = enc.shape;
  return picture(v, 0, h, w, scaleFor(h, w, target), c === 3);
}

function range(enc) {
  return `min ${fmt(enc.min, 3)}, max ${fmt(enc.max, 3)}`;
}

function buildLayers(s) {
  const root = $("layers");
  root.replaceChildren();
  for (const layer of s.layers) {
    const panel = document.createElement("div");
    panel.className = "layer";
    panel.setAttribute("data-testid", "layer");
    panel.innerHTML = `<div class="layer-head"><b></b><span class="shape"></span><span class="params"></span></div>
      <div class="layer-body"><div class="maps"></div><div class="filters"></div></div><div class="formula" hidden></div>`;
    panel.querySelector("b").textContent = `${layer.index}: ${layer.name}`;
    panel.querySelector(".shape").textContent = `output ${JSON.stringify(layer.output_shape)}`;
    panel.querySelector(".params").textContent = layer.params ? `${layer.params.toLocaleString()} parameters` : "";
    root.append(panel);
  }
  $("network-note").textContent = `${s.layers.length} layers, ${s.params.toLocaleString()} parameters`;
}

function drawNetwork(m) {
  if (!page.setup) return;
  page.network = m;
  const label = m.label === null ? "" : ` (true class: ${page.setup.classes[m.label]})`;
  const guess = m.top3.map((t) => `${t.name} ${(100 * t.p).toFixed(0)}%`).join(", ");
  const input = $("network-input");
  input.replaceChildren();
  const caption = document.createElement("div");
  caption.textContent = `${m.source} example ${m.example}${label}: ${guess}`;
  input.append(exampleCanvas(m.input, 64), caption);
  const panels = $("layers").querySelectorAll('[data-testid="layer"]');
  m.layers.forEach((layer, i) => {
    const panel = panels[i];
    if (!panel) return;
    const maps = panel.querySelector(".maps");
    maps.replaceChildren(mapsView(layer));
    const filters = panel.querySelector(".filters");
    filters.replaceChildren();
    if (layer.filters) {
      filters.append(filtersView(layer.filters, layer.rgb, "weights"), filtersView(layer.filter_grads, layer.rgb, "gradients"));
    }
  });
}

function mapsView(layer) {
  const enc = layer.activations, v = levels(enc), box = document.createElement("div");
  const note = document.createElement("div");
  note.className = "range";
  note.textContent = `activations: ${range(enc)}` + (layer.maps > enc.shape[0] && enc.shape.length > 1 ? ` (first ${enc.shape[0]} of ${layer.maps})` : "");
  box.append(note);
  const grid = document.createElement("div");
  grid.className = "grid";
  if (enc.shape.length === 3) {  // (maps, H, W)
    const [n, h, w] = enc.shape, scale = scaleFor(h, w, 64);
    for (let k = 0; k < n; k++) {
      const c = picture(v, k * h * w, h, w, scale, false);
      c.title = `map ${k}`;
      c.addEventListener("click", (e) => explainUnit(layer.index, [k, Math.floor(e.offsetY / scale), Math.floor(e.offsetX / scale)], c));
      grid.append(c);
    }
  } else if (enc.shape.length === 2) {  // (maps, L)
    const [n, len] = enc.shape;
    for (let k = 0; k < n; k++) {
      const c = linePlot(v, k * len, len, 96, 36);
      c.title = `map ${k}`;
      c.addEventListener("click", (e) => explainUnit(layer.index, [k, Math.min(len - 1, Math.floor(e.offsetX / 96 * len))], c));
      grid.append(c);
    }
  } else {  // (units,): one strip
    const n = enc.shape[0], scale = n > 256 ? 1 : Math.max(2, Math.floor(256 / n));
    const c = picture(v, 0, 1, n, scale, false);
    c.style.height = "12px";
    grid.append(c);
  }
  box.append(grid);
  return box;
}

function filtersView(enc, rgb, what) {
  const box = document.createElement("div"), v = levels(enc);
  const note = document.createElement("div");
  note.className = "range";
  note.textContent = `${what}: ${range(enc)}`;
  box.append(note);
  const grid = document.createElement("div");
  grid.className = "grid filters-grid";
  if (enc.shape.length === 4) {  // (F, C, KH, KW)
    const [f, c, kh, kw] = enc.shape, scale = scaleFor(kh, kw, 20);
    for (let k = 0; k < f; k++) {
      const tile = document.createElement("span");
      tile.className = "filter";
      if (rgb) tile.append(picture(v, k * c * kh * kw, kh, kw, scale, true));
      else for (let ch = 0; ch < c; ch++) tile.append(picture(v, (k * c + ch) * kh * kw, kh, kw, scale, false));
      grid.append(tile);
    }
  } else {  // (F, C, K): each filter a C x K strip
    const [f, c, kk] = enc.shape;
    for (let k = 0; k < f; k++) grid.append(picture(v, k * c * kk, c, kk, 6, false));
  }
  box.append(grid);
  return box;
}

async function explainUnit(layer, position, canvas) {
  const panel = canvas.closest('[data-testid="layer"]');
  const box = panel.querySelector(".formula");
  box.hidden = false;
  try {
    const r = await api("explain", {layer, position});
    box.textContent = `unit ${JSON.stringify(position)} of layer ${layer}: ${r.formula}`;
  } catch (e) {
    box.textContent = e.message;
  }
}

function bars(top3, label) {
  const list = document.createElement("div");
  list.className = "bars";
  for (const t of top3) {
    const bar = document.createElement("div");
    bar.className = "top3-bar";
    bar.setAttribute("data-testid", "top3-bar");
    const colour = t.class === label ? GREEN : (label === null || label === undefined ? "#8fb3de" : "#c8c8c8");
    const width = Math.max(1, 100 * t.p).toFixed(1);
    bar.style.background = `linear-gradient(to right, ${colour} ${width}%, #f1f1f1 ${width}%)`;
    bar.classList.toggle("true", t.class === label);
    bar.textContent = `${t.name} ${(100 * t.p).toFixed(0)}%`;
    list.append(bar);
  }
  return list;
}

function drawTests(m) {
  page.testWindow = m.recent;
  $("testing-note").textContent = `${m.source} images; accuracy ${pct(m.accuracy)} over the last ${m.recent} ` +
    `predicted; the confusion matrix counts the last ${m.window}`;
  $("cards").replaceChildren(...m.cards.map((card) => {
    const div = document.createElement("div");
    div.className = "card";
    div.setAttribute("data-testid", "test-card");
    div.title = `example ${card.index}: ${m.classes[card.label]} (click to show it in the network view)`;
    div.append(exampleCanvas(card.image, 48), bars(card.top3, card.label));
    div.addEventListener("click", () => command("example", {index: card.index}));
    return div;
  }));
  drawConfusion(m.confusion, m.classes);
  $("confused").replaceChildren(...m.confused.map((c) => {
    const div = document.createElement("div");
    div.className = "confused-item";
    const text = document.createElement("div");
    text.innerHTML = `<span class="truth"></span> → <span class="wrong"></span>`;
    text.querySelector(".truth").textContent = m.classes[c.label];
    text.querySelector(".wrong").textContent = `${m.classes[c.pred]} ${(100 * c.p).toFixed(0)}%`;
    div.append(exampleCanvas(c.image, 40), text);
    div.addEventListener("click", () => command("example", {index: c.index}));
    return div;
  }));
}

function drawConfusion(matrix, classes) {
  const table = document.createElement("table");
  table.className = "confusion";
  const head = table.insertRow();
  head.insertCell().textContent = "";
  classes.forEach((name, j) => {
    const th = document.createElement("th");
    th.textContent = j;
    th.title = name;
    head.append(th);
  });
  matrix.forEach((row, i) => {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = `${i} ${classes[i]}`;
    tr.append(th);
    const total = row.reduce((a, b) => a + b, 0) || 1;
    row.forEach((count, j) => {
      const td = tr.insertCell();
      td.textContent = count || "";
      const share = count / total;
      td.style.background = i === j ? `rgba(85,187,85,${share})` : `rgba(187,85,85,${Math.min(1, 2 * share)})`;
    });
  });
  $("confusion").replaceChildren(table);
}

// -- own input ------------------------------------------------------------------------------------------------
async function classify(blob, type) {
  try {
    const r = await api("predict", blob, type || "application/octet-stream");
    const out = $("upload-result");
    out.replaceChildren(exampleCanvas(r.input, 64), bars(r.top3, null));
  } catch (e) {
    const out = $("upload-result");
    const p = document.createElement("div");
    p.className = "error";
    p.textContent = e.message;
    out.replaceChildren(p);
  }
}

function setupDrawing() {
  const canvas = $("draw"), ctx = canvas.getContext("2d");
  const clear = () => {
    ctx.fillStyle = "black";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
  };
  clear();
  let down = false;
  const at = (e) => [e.offsetX, e.offsetY];
  const send = () => canvas.toBlob((blob) => classify(blob, "image/png"));
  canvas.addEventListener("pointerdown", (e) => {
    down = true;
    ctx.beginPath();
    ctx.moveTo(...at(e));
  });
  canvas.addEventListener("pointermove", (e) => {
    if (!down) return;
    ctx.strokeStyle = "white";
    ctx.lineWidth = 16;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineTo(...at(e));
    ctx.stroke();
    if (!page.drawTimer) page.drawTimer = setTimeout(() => { page.drawTimer = null; send(); }, 150);
  });
  addEventListener("pointerup", () => { if (down) { down = false; send(); } });
  $("clear-draw").addEventListener("click", () => { clear(); $("upload-result").replaceChildren(); });
}

// -- wiring ---------------------------------------------------------------------------------------------------
function wire() {
  $("model").addEventListener("change", () => chooseModel($("model").value));
  $("dataset").addEventListener("change", () => {
    $("dataset-error").hidden = true;
    const suggested = page.options.suggested[$("dataset").value];
    if (suggested && $("model").value !== "custom") chooseModel(suggested);
  });
  $("spec").addEventListener("input", () => {
    $("model").value = "custom";
    checkSpec();
  });
  $("start").addEventListener("click", () => command("start", setupPayload()));
  $("pause").addEventListener("click", () => command(page.state === "paused" ? "resume" : "pause", {}));
  $("stop").addEventListener("click", () => command("stop", {}));
  $("continue").addEventListener("click", () => command("continue", {epochs: Number($("epochs").value)}));
  for (const key of ["lr", "momentum", "batch_size", "weight_decay"]) $(key).addEventListener("change", () => liveChange(key));
  $("upload").addEventListener("change", () => {
    const file = $("upload").files[0];
    // Images as themselves; anything else (a .txt or .npy signal) as bytes: text/plain is refused (see app.py).
    if (file) classify(file, file.type.startsWith("image/") ? file.type : "application/octet-stream");
    $("upload").value = "";
  });
  $("load").addEventListener("change", () => {
    const file = $("load").files[0];
    $("load").value = "";
    if (file) loadCheckpoint(file);
  });
  setupDrawing();
}

async function loadCheckpoint(file) {
  clearErrors();
  say("loading the checkpoint...");
  try {
    const s = await api("checkpoint", file, "application/octet-stream");
    setStatus(s.state, s.message, s.seq);
    say("checkpoint loaded: inspect it, or press Continue to train on");
  } catch (e) {
    showError(e);
  }
}

async function main() {
  if (TOKEN) $("download").href = "api/checkpoint?token=" + encodeURIComponent(TOKEN);
  makeCharts();
  wire();
  await loadOptions();
  showStats({});
  connect();
}

main();
