// diffuse serve: the page. Plain JavaScript, no libraries: everything it loads comes from this
// server. The Generate page posts a request, follows its progress as server-sent events and
// keeps a gallery; each seed page re-runs its experiment when a control moves and draws the
// numbers it gets back on a canvas.
"use strict";

const $ = (id) => document.getElementById(id);
let models = [];
let following = null; // { id, source }

// ---------- pages ----------
function showPage() {
  const name = (location.hash || "#generate").slice(1);
  for (const s of document.querySelectorAll(".page")) s.hidden = s.id !== "page-" + name;
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("here", a.dataset.page === name);
  const form = document.querySelector(`#page-${name} form.controls`);
  if (form && !form.dataset.ran) { form.dataset.ran = "1"; runExperiment(form); }
}
window.addEventListener("hashchange", showPage);

async function answer(response) {
  let body;
  try { body = await response.json(); } catch (e) { body = { error: `the server answered ${response.status}` }; }
  if (!response.ok) throw new Error(body.error || `the server answered ${response.status}`);
  return body;
}

function showError(box, message) {
  box.textContent = message || "";
  box.hidden = !message;
}

// ---------- generation ----------
function model() { return models.find((m) => m.name === $("model").value); }

function fillForm(m) {
  const sd = m.kind === "stable-diffusion";
  $("prompt-row").hidden = !(m.reads_prompts || sd);
  $("negative-row").hidden = !sd;
  $("size-row").hidden = !sd;
  $("label-row").hidden = m.reads_prompts || sd || m.classes.length === 0;
  const label = $("label");
  label.replaceChildren(new Option("(none)", ""), ...m.classes.map((c) => new Option(c, c)));
  if (m.classes.length) label.append(new Option("every class", "all"));
  const sampler = $("sampler");
  sampler.replaceChildren(...m.samplers.map((s) => new Option(s, s, s === m.sampler, s === m.sampler)));
  $("nfe").value = m.nfe ?? "";
  $("nfe").placeholder = m.nfe ? "" : "sampler's default";
  $("guidance").value = m.guidance;
  $("n").value = Math.min(m.n, m.kind === "points" ? 10000 : 16);
  $("size").value = sd && m.image ? m.image[0] : "";
  const what = m.kind === "points" ? `${m.dim}-D points` : m.image ? `${m.image[0]}x${m.image[1]} ${m.image[2] === 3 ? "colour" : "grey"} images` : "";
  $("model-about").textContent = `${m.source}: ${what}` + (m.classes.length ? `; classes: ${m.classes.join(", ")}` : "") +
    (m.reads_prompts ? "; reads prompts" : "");
}

function requestFromForm() {
  const m = model();
  const r = { model: m.name };
  const text = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : v; };
  const num = (id) => { const v = $(id).value.trim(); return v === "" ? undefined : Number(v); };
  if (!$("prompt-row").hidden) r.prompt = text("prompt");
  if (!$("negative-row").hidden) r.negative_prompt = text("negative_prompt");
  if (!$("label-row").hidden) r.label = text("label");
  r.sampler = text("sampler");
  r.nfe = num("nfe");
  r.guidance = num("guidance");
  r.seed = num("seed");
  r.n = num("n");
  if (!$("size-row").hidden) r.size = num("size");
  return r;
}

function setForm(request) {
  $("model").value = request.model;
  fillForm(model());
  for (const k of ["prompt", "negative_prompt", "label", "sampler", "nfe", "guidance", "seed", "n", "size"]) {
    if (request[k] !== undefined && request[k] !== null) $(k).value = request[k];
  }
}

async function submit(request) {
  showError($("error"), "");
  let job;
  try {
    job = await answer(await fetch("/api/generate", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(request),
    }));
  } catch (e) { showError($("error"), e.message); return; }
  follow(job);
}

function follow(job) {
  if (following) following.source.close();
  $("current").hidden = false;
  $("result").replaceChildren();
  $("preview").hidden = true;
  $("points").hidden = true;
  $("warnings").textContent = "";
  $("progress").value = 0;
  $("status").textContent = job.position ? `waiting: place ${job.position} in the queue` : "starting";
  $("cancel").disabled = false;
  const source = new EventSource(job.events);
  following = { id: job.id, source };
  const data = (e) => JSON.parse(e.data);
  source.addEventListener("queued", (e) => { $("status").textContent = `waiting: place ${data(e).position} in the queue`; });
  source.addEventListener("running", () => { $("status").textContent = "running"; });
  source.addEventListener("progress", (e) => {
    const p = data(e);
    $("progress").value = p.progress;
    $("status").textContent = p.step ? `step ${p.step} of ${p.steps}` : `${Math.round(100 * p.progress)}%`;
  });
  source.addEventListener("preview", (e) => { $("preview").src = data(e).url; $("preview").hidden = false; });
  source.addEventListener("warning", (e) => { $("warnings").textContent += data(e).message + " "; });
  const end = (text) => { source.close(); following = null; $("cancel").disabled = true; $("status").textContent = text; };
  source.addEventListener("done", (e) => {
    const done = data(e);
    end(`done: ${done.numbers.n} in ${done.numbers.nfe} evaluations each`);
    $("progress").value = 1;
    $("preview").hidden = true;
    showResult(done, $("result"));
    if (done.points) { $("points").hidden = false; drawPoints($("points"), done.points); }
    loadGallery();
  });
  source.addEventListener("failed", (e) => { end("failed"); showError($("error"), data(e).error); loadGallery(); });
  source.addEventListener("cancelled", () => { end("cancelled"); loadGallery(); });
  source.onerror = () => { if (following && following.id === job.id && source.readyState === EventSource.CLOSED) end("the connection to the server was lost"); };
}

function showResult(job, into) {
  const nodes = (job.images || []).map((url, k) => {
    const img = new Image();
    img.src = url;
    img.alt = `image ${k + 1}` + (job.request.prompt ? ` of "${job.request.prompt}"` : "");
    img.className = "sample";
    return img;
  });
  into.replaceChildren(...nodes);
}

function describe(r) {
  const parts = [r.model];
  if (r.prompt) parts.push(`"${r.prompt}"`);
  if (r.label) parts.push(`label ${r.label}`);
  if (r.negative_prompt) parts.push(`not "${r.negative_prompt}"`);
  for (const k of ["sampler", "nfe", "guidance", "seed", "n", "size"]) if (r[k] !== undefined && r[k] !== null) parts.push(`${k} ${r[k]}`);
  return parts.join(", ");
}

async function loadGallery() {
  let jobs;
  try { jobs = (await answer(await fetch("/api/jobs"))).jobs; } catch (e) { return; }
  const cards = jobs.map((job) => {
    const card = document.createElement("div");
    card.className = "card";
    const head = document.createElement("p");
    head.textContent = `#${job.id} ${job.phase}: ${describe(job.request)}`;
    card.append(head);
    if (job.phase === "failed") { const p = document.createElement("p"); p.className = "error"; p.textContent = job.error; card.append(p); }
    const images = document.createElement("div");
    images.className = "images small";
    showResult(job, images);
    card.append(images);
    const links = document.createElement("p");
    const again = document.createElement("button");
    again.type = "button";
    again.textContent = "Run again";
    again.onclick = () => { setForm(job.request); submit(job.request); window.scrollTo(0, 0); };
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit settings";
    edit.onclick = () => { setForm(job.request); window.scrollTo(0, 0); };
    links.append(again, " ", edit);
    for (const [key, text] of [["download", "download (zip)"], ["summary", "summary.json"], ["samples", "samples.csv"]]) {
      if (job[key]) { const a = document.createElement("a"); a.href = job[key]; a.textContent = text; links.append(" ", a); }
    }
    card.append(links);
    return card;
  });
  $("gallery").replaceChildren(...cards);
}

$("generate-form").addEventListener("submit", (e) => { e.preventDefault(); submit(requestFromForm()); });
$("model").addEventListener("change", () => fillForm(model()));
$("cancel").addEventListener("click", async () => {
  if (!following) return;
  try { await answer(await fetch(`/api/jobs/${following.id}/cancel`, { method: "POST" })); } catch (e) { showError($("error"), e.message); }
});

// ---------- plots ----------
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"];

function ticks(lo, hi, n) {
  const span = hi - lo || 1;
  const step0 = Math.pow(10, Math.floor(Math.log10(span / n)));
  const step = [1, 2, 5, 10].map((m) => m * step0).find((s) => span / s <= n) || step0 * 10;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.abs(v) < 1e-12 * span ? 0 : v);
  return out;
}

function fmt(v) {
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

// Draws { bars: [{lo, hi, density, colour, label}], lines: [{points, colour, label, width}] }.
function plot(canvas, { title, xlabel, ylabel, bars = [], lines = [], xlim, ylim, equal = false }) {
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 56, R = 12, T = 26, B = 40;
  g.clearRect(0, 0, W, H);
  let [x0, x1] = xlim || [Infinity, -Infinity];
  let [y0, y1] = ylim || [0, -Infinity];
  if (!xlim) for (const b of bars) { x0 = Math.min(x0, b.lo); x1 = Math.max(x1, b.hi); }
  for (const l of lines) for (const [x, y] of l.points) {
    if (!xlim) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); }
    if (!ylim) { y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  }
  if (!ylim) for (const b of bars) for (const d of b.density) y1 = Math.max(y1, d);
  if (!isFinite(x0) || x1 <= x0) { x0 = 0; x1 = 1; }
  if (!isFinite(y1) || y1 <= y0) y1 = y0 + 1;
  if (!ylim) { const pad = 0.05 * (y1 - y0); y1 += pad; if (y0 < 0) y0 -= pad; }
  if (equal) {
    const sx = (W - L - R) / (x1 - x0), sy = (H - T - B) / (y1 - y0);
    if (sx > sy) { const c = (x0 + x1) / 2, h = (W - L - R) / sy / 2; x0 = c - h; x1 = c + h; }
    else { const c = (y0 + y1) / 2, h = (H - T - B) / sx / 2; y0 = c - h; y1 = c + h; }
  }
  const X = (x) => L + (x - x0) / (x1 - x0) * (W - L - R);
  const Y = (y) => H - B - (y - y0) / (y1 - y0) * (H - T - B);
  g.save();
  g.beginPath(); g.rect(L, T, W - L - R, H - T - B); g.clip();
  for (const b of bars) {
    const w = (b.hi - b.lo) / b.density.length;
    g.fillStyle = b.colour + "66";
    b.density.forEach((d, i) => { const xa = X(b.lo + i * w), xb = X(b.lo + (i + 1) * w); g.fillRect(xa, Y(d), xb - xa, Y(0) - Y(d)); });
  }
  for (const l of lines) {
    g.strokeStyle = l.colour; g.lineWidth = l.width || 2; g.beginPath();
    l.points.forEach(([x, y], i) => (i ? g.lineTo(X(x), Y(y)) : g.moveTo(X(x), Y(y))));
    if (l.dots) { for (const [x, y] of l.points) g.fillRect(X(x) - 1, Y(y) - 1, 2, 2); } else g.stroke();
  }
  g.restore();
  g.strokeStyle = "#444"; g.fillStyle = "#222"; g.lineWidth = 1; g.font = "12px sans-serif";
  g.strokeRect(L, T, W - L - R, H - T - B);
  g.textAlign = "center";
  for (const v of ticks(x0, x1, 7)) { g.beginPath(); g.moveTo(X(v), H - B); g.lineTo(X(v), H - B + 4); g.stroke(); g.fillText(fmt(v), X(v), H - B + 16); }
  g.textAlign = "right";
  for (const v of ticks(y0, y1, 5)) { g.beginPath(); g.moveTo(L - 4, Y(v)); g.lineTo(L, Y(v)); g.stroke(); g.fillText(fmt(v), L - 6, Y(v) + 4); }
  g.textAlign = "center";
  if (xlabel) g.fillText(xlabel, L + (W - L - R) / 2, H - 6);
  if (title) { g.font = "bold 13px sans-serif"; g.fillText(title, W / 2, 16); g.font = "12px sans-serif"; }
  if (ylabel) { g.save(); g.translate(14, T + (H - T - B) / 2); g.rotate(-Math.PI / 2); g.fillText(ylabel, 0, 0); g.restore(); }
  // Legend, top right inside the frame.
  const named = [...bars, ...lines].filter((s) => s.label);
  g.textAlign = "left";
  named.forEach((s, i) => {
    const y = T + 14 + 16 * i, x = W - R - 150;
    g.fillStyle = s.colour; g.fillRect(x, y - 8, 12, 8);
    g.fillStyle = "#222"; g.fillText(s.label, x + 16, y);
  });
}

function drawPoints(canvas, points) {
  const d = points[0] ? points[0].length : 0;
  if (d === 1) {
    const xs = points.map((p) => p[0]);
    const lo = Math.min(...xs), hi = Math.max(...xs), bins = 60, w = (hi - lo) / bins || 1;
    const counts = new Array(bins).fill(0);
    for (const x of xs) counts[Math.min(bins - 1, Math.floor((x - lo) / w))] += 1;
    plot(canvas, { title: `${xs.length} samples`, xlabel: "x", ylabel: "density", bars: [{ lo, hi: lo + bins * w, density: counts.map((c) => c / (xs.length * w)), colour: COLOURS[0] }] });
  } else {
    plot(canvas, { title: `${points.length} samples (first two coordinates)`, xlabel: "x1", ylabel: "x2", equal: true, lines: [{ points: points.map((p) => [p[0], p[1]]), colour: COLOURS[0], dots: true }] });
  }
}

// ---------- seed experiments ----------
function controlValue(input) {
  if (input.dataset.log) return Math.pow(Number(input.dataset.log), Number(input.value));
  if (input.dataset.prefix) return input.dataset.prefix + input.value;
  return input.value;
}

function showOutputs(form) {
  for (const input of form.querySelectorAll("input[type=range]")) {
    const out = input.nextElementSibling;
    if (out && out.tagName === "OUTPUT") { const v = controlValue(input); out.textContent = typeof v === "number" ? fmt(v) : v; }
  }
}

const timers = new WeakMap();
function scheduleRun(form) {
  clearTimeout(timers.get(form));
  timers.set(form, setTimeout(() => runExperiment(form), 200));
}

async function runExperiment(form) {
  const section = form.closest("section");
  const which = form.dataset.experiment;
  // A slider whose range follows another (t up to T).
  for (const input of form.querySelectorAll("[data-max-of]")) {
    const max = form.elements[input.dataset.maxOf].value;
    input.max = max;
    if (Number(input.value) > Number(max)) input.value = max;
  }
  showOutputs(form);
  // Controls that do not apply to the chosen method or sampler are hidden and not sent.
  const unused = (name) =>
    (which === "chains" && name === "delta" && form.elements.method.value !== "langevin") ||
    (which === "chains" && name === "proposal" && form.elements.method.value !== "metropolis") ||
    (which === "undiffuse" && name === "nfe" && ["ddpm", "sde", "ode"].includes(form.elements.sampler.value));
  const params = new URLSearchParams();
  for (const el of form.elements) {
    if (!el.name) continue;
    el.closest("label").hidden = unused(el.name);
    if (unused(el.name)) continue;
    const v = controlValue(el);
    if (v !== "") params.set(el.name, v);
  }
  const box = section.querySelector(".error");
  const stamp = Symbol();
  form.stamp = stamp;
  section.classList.add("busy");
  let r;
  try {
    r = await answer(await fetch(`/api/seed/${which}?${params}`));
  } catch (e) {
    if (form.stamp === stamp) { section.classList.remove("busy"); showError(box, e.message); }
    return;
  }
  if (form.stamp !== stamp) return; // a newer run is on its way
  section.classList.remove("busy");
  showError(box, "");
  const [left, right] = section.querySelectorAll("canvas");
  const numbers = section.querySelector(".numbers");
  const stat = (k, label) => (r.stats && r.stats[k] !== undefined && r.stats[k] !== null ? `${label} ${fmt(r.stats[k])}` : null);
  const pathLines = (r.paths || []).map((p, i) => ({ points: p, colour: COLOURS[i % COLOURS.length], width: 1 }));
  if (which === "chains") {
    plot(left, { title: "final states against exp(-E)/Z", xlabel: "x", ylabel: "density",
      bars: [{ ...r.histogram, colour: COLOURS[0], label: "final states" }], lines: [{ points: r.theory, colour: COLOURS[1], label: "exp(-E)/Z" }] });
    plot(right, { title: "the first chains", xlabel: "step", ylabel: "x", lines: pathLines });
    const extra = r.extra.acceptance !== undefined ? `acceptance ${fmt(r.extra.acceptance)}` : null;
    numbers.textContent = [stat("ks_p_value", "KS p"), stat("mean", "mean"), stat("variance", "variance"), stat("stationary_variance", "(exp(-E)/Z:"), extra].filter(Boolean).join(", ");
  } else if (which === "forward") {
    const lines = r.theory ? [{ points: r.theory, colour: COLOURS[1], label: "q_t, closed form" }] : [];
    plot(left, { title: `x_t step by step (alpha-bar ${fmt(r.alpha_bar)})`, xlabel: "x", ylabel: "density",
      bars: [{ ...r.data, colour: "#999999", label: "data x_0" }, { ...r.histogram, colour: COLOURS[0], label: "x_t" }], lines });
    plot(right, { title: "paths of the first samples", xlabel: "step", ylabel: "x", lines: pathLines });
    numbers.textContent = Object.entries(r.stats).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
  } else if (which === "undiffuse") {
    const lines = r.theory ? [{ points: r.theory, colour: COLOURS[1], label: "data law" }] : [];
    plot(left, { title: `samples after ${r.nfe} evaluations`, xlabel: "x", ylabel: "density",
      bars: [{ ...r.reference, colour: "#999999", label: "data" }, { ...r.histogram, colour: COLOURS[0], label: "samples" }], lines });
    plot(right, { title: "reverse paths (time runs right to left)", xlabel: "t", ylabel: "x", lines: pathLines });
    numbers.textContent = Object.entries(r.stats).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${fmt(v)}`).join(", ");
  } else {
    const s = r.slope_at_point_data;
    plot(left, { title: "best guess of z given x_t", xlabel: "x_t", ylabel: "E[z | x_t]", ylim: [-4.5, 4.5],
      lines: [{ points: r.guess, colour: COLOURS[0], label: "E[z | x_t]" }, { points: [[-4.5 / s, -4.5], [4.5 / s, 4.5]], colour: "#999999", label: "slope 1/sqrt(1-ab)", width: 1 }] });
    plot(right, { title: `density of x_t (alpha-bar ${fmt(r.alpha_bar)})`, xlabel: "x_t", ylabel: "density", lines: [{ points: r.density, colour: COLOURS[1] }] });
    numbers.textContent = `alpha-bar ${fmt(r.alpha_bar)}: near t = 0 the guess jumps between the data's points.`;
  }
}

for (const form of document.querySelectorAll("form.controls")) {
  form.addEventListener("input", () => scheduleRun(form));
  form.addEventListener("submit", (e) => e.preventDefault());
}

// ---------- start ----------
(async () => {
  try {
    const r = await answer(await fetch("/api/models"));
    models = r.models;
    $("model").replaceChildren(...models.map((m) => new Option(m.name, m.name)));
    if (models.length) fillForm(models[0]);
  } catch (e) { showError($("error"), e.message); }
  loadGallery();
  showPage();
})();
