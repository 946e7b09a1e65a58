// Hourglass web console: a page per hash route (#/, #/tasks, #/tasks/ID,
// #/queues, #/schedules, #/schedules/ID), drawn from the node's own HTTP API. Every value from the API
// reaches the page as text (textContent), never as HTML.
"use strict";

const STATES = ["scheduled", "running", "succeeded", "dead", "cancelled", "expired"];
const main = document.getElementById("main");
const noticeBox = document.getElementById("notice");
let token = localStorage.getItem("hourglass-token") || "";
let refreshTimer = null;
let forecastRange = "1h";
// history holds the overview's metrics samples (one per refresh, the
// last HISTORY_SPAN) for rates and the charts of the last minutes. It is
// kept while the page is open, across the console's pages.
const HISTORY_SPAN = 15 * 60e3;
const history = [];

// h builds an element: h("a", {href: "#/", class: "x", onclick: fn}, "text", child...).
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

// s builds an SVG element.
function s(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  setAttrs(el, attrs);
  appendAll(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
}

// fill replaces el's children (null and false skipped).
function fill(el, ...children) {
  el.replaceChildren();
  appendAll(el, children);
}

function appendAll(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (token) opts.headers.Authorization = "Bearer " + token;
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const resp = await fetch(path, opts);
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : `${resp.status} ${resp.statusText}`;
    throw new APIError(resp.status, msg);
  }
  return data;
}

// allQueues reads every page of GET /v1/queues.
async function allQueues(stale) {
  const out = [];
  let token = "";
  do {
    const p = new URLSearchParams();
    if (stale) p.set("stale", "true");
    if (token) p.set("page_token", token);
    const page = await api("GET", "/v1/queues?" + p);
    out.push(...page.queues);
    token = page.next_page_token || "";
  } while (token);
  return out;
}

function notice(msg, kind) {
  noticeBox.hidden = !msg;
  noticeBox.className = kind || "info";
  noticeBox.textContent = msg || "";
}

function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z").replace(/Z$/, " UTC");
}

function fmtSeconds(v) {
  if (v === null || v === undefined || isNaN(v)) return "–";
  if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms";
  if (v < 120) return v.toFixed(2) + " s";
  return (v / 60).toFixed(1) + " min";
}

function fmtCount(n) { return Number(n || 0).toLocaleString("en-US"); }

function stateBadge(state) { return h("span", { class: "state state-" + state }, state); }

// ---- routing --------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query] = raw.split("?");
  return { path, params: new URLSearchParams(query || "") };
}

async function route() {
  clearInterval(refreshTimer);
  refreshTimer = null;
  notice("");
  const { path, params } = parseHash();
  const page = path.startsWith("/tasks") ? "tasks" : path.startsWith("/queues") ? "queues" : path.startsWith("/schedules") ? "schedules" : "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  try {
    if (path === "/" || path === "") await overview();
    else if (path === "/tasks") await taskList(params);
    else if (path.startsWith("/tasks/")) await taskDetail(decodeURIComponent(path.slice("/tasks/".length)));
    else if (path === "/queues") await queueList();
    else if (path === "/schedules") await scheduleList();
    else if (path.startsWith("/schedules/")) await scheduleDetail(decodeURIComponent(path.slice("/schedules/".length)));
    else render(h("p", {}, "No such page. ", h("a", { href: "#/" }, "Overview")));
  } catch (e) {
    showError(e);
  }
}

function render(...nodes) {
  fill(main, nodes);
}

function showError(e) {
  if (e instanceof APIError && e.status === 401) {
    clearInterval(refreshTimer);
    showLogin();
    return;
  }
  notice(e.message, "error");
}

function showLogin() {
  const input = h("input", { type: "password", id: "token", placeholder: "API token", autocomplete: "off" });
  render(h("section", { class: "card" },
    h("h2", {}, "Sign in"),
    h("p", {}, "This server requires an API token: one from its --tokens-file (with the tasks:read scope to look, tasks:write to change tasks and queues) or its --auth-token."),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      token = input.value.trim();
      localStorage.setItem("hourglass-token", token);
      route();
    } }, input, " ", h("button", { type: "submit" }, "Sign in"))));
}

// ---- overview -------------------------------------------------------------

// loading is what a card shows until its first data arrives.
function loading() { return h("p", { class: "muted loading" }, h("span", { class: "spinner" }), "Loading…"); }

async function overview() {
  const card = (id, title, wide) => h("section", { class: wide ? "card wide" : "card", id }, h("h2", {}, title), loading());
  const cluster = card("cluster", "Cluster", true);
  const firing = card("firing", "Firing", false);
  const tasks = card("tasks-by-queue", "Tasks by queue and state", false);
  const rates = card("rates", "The last minutes", true);
  const forecast = card("forecast", "Due forecast", true);
  render(h("div", { class: "grid" }, cluster, firing, tasks, rates, forecast));
  const refresh = async () => {
    try {
      const [info, queues, metrics] = await Promise.all([
        api("GET", "/v1/cluster"), allQueues(true), fetchMetrics()]);
      if (metrics) record(metrics);
      drawCluster(cluster, info);
      drawFiring(firing, metrics, info);
      drawRates(rates, metrics);
      drawTasks(tasks, queues);
      await drawForecast(forecast);
      return true;
    } catch (e) {
      showError(e);
      return false;
    }
  };
  if (await refresh()) refreshTimer = setInterval(refresh, 3000);
}

function drawCluster(box, info) {
  const leader = info.leader ? info.leader.id : "none";
  const groups = info.groups || [];
  fill(box,
    h("h2", {}, "Cluster"),
    h("p", {}, groups.length > 1 ? "Leader of group 1: " : "Leader: ", h("strong", { id: "leader" }, leader), ` · term ${info.term} · commit ${fmtCount(info.commit_index)} · applied ${fmtCount(info.applied_index)}`),
    h("table", { id: "nodes" },
      h("thead", {}, h("tr", {}, ["Node", "Role", "HTTP", "Raft", "Voter", "Reachable"].map((c) => h("th", {}, c)))),
      h("tbody", {}, info.nodes.map((n) => h("tr", {},
        h("td", {}, n.id), h("td", {}, h("span", { class: "role role-" + n.state }, n.state)),
        h("td", {}, n.http_addr || ""), h("td", {}, n.raft_addr || ""),
        h("td", {}, n.voter ? "yes" : "no"), h("td", {}, n.alive ? "yes" : h("span", { class: "bad" }, "no")))))),
    groups.length > 1 ? h("table", { id: "groups" },
      h("thead", {}, h("tr", {}, ["Group", "Leader", "Replicas", "Slots", "Tasks", "Lag"].map((c) => h("th", {}, c)))),
      h("tbody", {}, groups.map((g) => h("tr", {},
        h("td", {}, String(g.id)),
        h("td", {}, g.leader ? g.leader.id : h("span", { class: "bad" }, "none")),
        h("td", {}, g.replicas.map((r) => r.id + (r.state === "leader" || r.state === "follower" ? "" : ` (${r.state})`) + (r.alive ? "" : " (down)")).join(", ")),
        h("td", {}, String(g.slots)), h("td", {}, g.local ? fmtCount(g.tasks) : "–"), h("td", {}, g.local ? fmtCount(g.lag) : "–"))))) : null);
}

async function fetchMetrics() {
  const opts = token ? { headers: { Authorization: "Bearer " + token } } : {};
  const resp = await fetch("/metrics", opts);
  if (!resp.ok) return null;
  return parseMetrics(await resp.text());
}

// parseMetrics reads the Prometheus text format into {name, labels, value}.
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const l of m[3].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: parseFloat(m[4]) });
  }
  return out;
}

function sum(metrics, name) {
  return metrics.filter((m) => m.name === name).reduce((a, m) => a + m.value, 0);
}

function buckets(metrics, name) {
  return metrics.filter((m) => m.name === name + "_bucket")
    .map((m) => ({ le: m.labels.le === "+Inf" ? Infinity : parseFloat(m.labels.le), count: m.value }))
    .sort((a, b) => a.le - b.le);
}

// quantile estimates a quantile from cumulative buckets as Prometheus's
// histogram_quantile does (linear within a bucket).
function quantile(bs, q) {
  if (!bs.length) return NaN;
  const total = bs[bs.length - 1].count;
  if (total <= 0) return NaN;
  const rank = q * total;
  let prevLe = 0, prevCount = 0;
  for (const b of bs) {
    if (b.count >= rank) {
      if (b.le === Infinity) return prevLe;
      return prevLe + (b.le - prevLe) * ((rank - prevCount) / Math.max(b.count - prevCount, 1e-9));
    }
    prevLe = b.le; prevCount = b.count;
  }
  return prevLe;
}

function failedAttempts(metrics) {
  return metrics.filter((m) => m.name === "hourglass_attempts_total" && m.labels.outcome !== "succeeded").reduce((a, m) => a + m.value, 0);
}

// record adds a metrics sample to the history.
function record(metrics) {
  const now = Date.now();
  history.push({
    at: now,
    fired: sum(metrics, "hourglass_tasks_fired_total"),
    failed: failedAttempts(metrics),
    backlog: sum(metrics, "hourglass_due_backlog_tasks"),
    lat: buckets(metrics, "hourglass_fire_lateness_seconds"),
  });
  while (history.length && history[0].at < now - HISTORY_SPAN) history.shift();
}

// between derives rates and the lateness p99 from two samples (null where
// the counters went backwards: the node restarted).
function between(a, b) {
  const secs = (b.at - a.at) / 1000;
  if (secs <= 0 || b.fired < a.fired || b.failed < a.failed) return null;
  const delta = b.lat.map((x, i) => ({ le: x.le, count: x.count - ((a.lat[i] || {}).count || 0) }));
  const fires = delta.length ? delta[delta.length - 1].count : 0;
  return {
    at: b.at,
    fireRate: (b.fired - a.fired) / secs,
    failRate: (b.failed - a.failed) / secs,
    backlog: b.backlog,
    p99: fires > 0 ? quantile(delta, 0.99) : null,
  };
}

function drawFiring(box, metrics, info) {
  const rows = [];
  if (!metrics) {
    fill(box, h("h2", {}, "Firing"), h("p", { class: "muted" }, "/metrics is not available on this node."));
    return;
  }
  const fired = sum(metrics, "hourglass_tasks_fired_total");
  const lat = buckets(metrics, "hourglass_fire_lateness_seconds");
  const last = history.length >= 2 ? between(history[history.length - 2], history[history.length - 1]) : null;
  const rate = last ? last.fireRate : null;
  const recentP99 = last ? last.p99 : null;
  const isLeader = sum(metrics, "hourglass_raft_leader") >= 1; // of some group
  rows.push(["Fire rate", rate === null ? "measuring…" : rate.toFixed(1) + " /s"]);
  rows.push(["Fired since start", fmtCount(fired)]);
  rows.push(["Lateness p50 / p99 (since start)", `${fmtSeconds(quantile(lat, 0.5))} / ${fmtSeconds(quantile(lat, 0.99))}`]);
  if (recentP99 !== null) rows.push(["Lateness p99 (last 3 s)", fmtSeconds(recentP99)]);
  rows.push(["Due, not fired (backlog)", fmtCount(sum(metrics, "hourglass_due_backlog_tasks"))]);
  rows.push(["Tasks in the timing wheel", fmtCount(sum(metrics, "hourglass_wheel_tasks"))]);
  const attempts = metrics.filter((m) => m.name === "hourglass_attempts_total");
  for (const outcome of ["succeeded", "failed", "lease_expired"]) {
    const n = attempts.filter((m) => m.labels.outcome === outcome).reduce((a, m) => a + m.value, 0);
    rows.push([`Attempts ${outcome.replace("_", " ")}`, fmtCount(n)]);
  }
  fill(box,
    h("h2", {}, "Firing"),
    isLeader ? null : h("p", { class: "muted" },
      "This node leads no group: it fires nothing. ",
      info.leader && info.leader.http_addr ? ["The leader's console: ", h("a", { href: `http://${info.leader.http_addr}/` }, info.leader.http_addr)] : ""),
    h("table", { id: "firing-stats", class: "kv" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))));
}

function drawTasks(box, queues) {
  const total = {};
  for (const st of STATES) total[st] = 0;
  const body = queues.map((q) => {
    for (const st of STATES) total[st] += q.tasks[st] || 0;
    return h("tr", {}, h("td", {}, h("a", { href: "#/tasks?queue=" + encodeURIComponent(q.name) }, q.name)),
      STATES.map((st) => h("td", { class: "num" }, (q.tasks[st] || 0) ? h("a", { href: `#/tasks?queue=${encodeURIComponent(q.name)}&state=${st}` }, fmtCount(q.tasks[st])) : "0")));
  });
  fill(box, h("h2", {}, "Tasks by queue and state"),
    queues.length === 0 ? h("p", { class: "muted" }, "No queues yet: create a task (POST /v1/tasks).") :
      h("table", { id: "queue-states" },
        h("thead", {}, h("tr", {}, h("th", {}, "Queue"), STATES.map((st) => h("th", { class: "num" }, st)))),
        h("tbody", {}, body),
        h("tfoot", {}, h("tr", {}, h("th", {}, "All"), STATES.map((st) => h("th", { class: "num" }, fmtCount(total[st])))))));
}

// drawRates charts the history: fires and failed attempts per second, the
// fire lateness p99 and the due backlog, each over the minutes the console
// has been open (up to HISTORY_SPAN).
function drawRates(box, metrics) {
  const title = h("h2", {}, "The last minutes");
  if (!metrics) {
    fill(box, title, h("p", { class: "muted" }, "/metrics is not available on this node."));
    return;
  }
  const points = [];
  for (let i = 1; i < history.length; i++) {
    const p = between(history[i - 1], history[i]);
    if (p) points.push(p);
  }
  if (points.length < 2) {
    fill(box, title, h("p", { class: "muted loading" }, h("span", { class: "spinner" }), "Measuring: the charts start after a few refreshes (every 3 s)."));
    return;
  }
  const span = Math.min(HISTORY_SPAN, Date.now() - history[0].at);
  const series = (key) => points.filter((p) => p[key] !== null).map((p) => ({ at: p.at, v: p[key] }));
  fill(box, title,
    h("p", { class: "muted" }, `This node's figures since the console was opened (up to ${HISTORY_SPAN / 60e3} minutes), one point per refresh.`),
    h("div", { class: "charts", id: "rate-charts" },
      lineChart("Fires per second", series("fireRate"), span, (v) => v.toFixed(v < 10 ? 1 : 0) + "/s"),
      lineChart("Fire lateness p99", series("p99"), span, fmtSeconds),
      lineChart("Due backlog (tasks)", series("backlog"), span, fmtCount, true),
      lineChart("Failed attempts per second", series("failRate"), span, (v) => v.toFixed(v < 10 ? 1 : 0) + "/s")));
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten, for axis ends.
function niceCeil(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v * (1 - 1e-9)) return m * p;
  return 10 * p;
}

// axisMax is the top of a y axis from zero with a labelled middle: twice
// a nice step (whole, for counts).
function axisMax(v, whole) {
  const step = niceCeil(v / 2);
  return 2 * (whole ? Math.max(1, Math.ceil(step)) : step);
}

// lineChart draws one series over the last span ms, ending now: a y axis
// from zero with three labelled grid lines, an x axis in minutes ago.
function lineChart(label, pts, span, fmt, whole) {
  const W = 460, H = 130, left = 64, right = 8, top = 8, bottom = 20;
  const now = Date.now();
  const yMax = axisMax(Math.max(0, ...pts.map((p) => p.v)), whole);
  const x = (at) => left + (W - left - right) * (1 - (now - at) / span);
  const y = (v) => top + (H - top - bottom) * (1 - v / yMax);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart line-chart", role: "img", "aria-label": label });
  for (const f of [0, 0.5, 1]) {
    svg.append(s("line", { x1: left, y1: y(f * yMax), x2: W - right, y2: y(f * yMax), class: f ? "grid" : "axis-line" }));
    svg.append(s("text", { x: left - 6, y: y(f * yMax) + 4, class: "axis y-tick", "text-anchor": "end" }, fmt(f * yMax)));
  }
  const minutes = span / 60e3;
  const ticks = minutes > 4 ? [minutes, minutes / 2, 0] : [minutes, 0];
  for (const m of ticks) {
    const label = m === 0 ? "now" : `−${m >= 1 ? Math.round(m) + " min" : Math.round(m * 60) + " s"}`;
    svg.append(s("text", { x: x(now - m * 60e3), y: H - 4, class: "axis x-tick", "text-anchor": m === 0 ? "end" : m === minutes ? "start" : "middle" }, label));
  }
  if (pts.length) {
    const d = pts.map((p, i) => `${i ? "L" : "M"}${x(p.at).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    svg.append(s("path", { d, class: "line" }, s("title", {}, `${label}: now ${fmt(pts[pts.length - 1].v)}`)));
  }
  const current = pts.length ? fmt(pts[pts.length - 1].v) : "–";
  return h("figure", { class: "rate" }, h("figcaption", {}, label, ": ", h("strong", {}, current)), svg);
}

const RANGES = {
  "1h": { span: 3600e3, step: "1m", label: "next hour, per minute", unit: "minute", every: 10 },
  "24h": { span: 24 * 3600e3, step: "1h", label: "next 24 hours, per hour", unit: "hour", every: 4 },
  "7d": { span: 7 * 24 * 3600e3, step: "6h", label: "next 7 days, per 6 hours", unit: "6 hours", every: 4 },
};

async function drawForecast(box) {
  const r = RANGES[forecastRange];
  const from = new Date(Math.floor(Date.now() / 1000) * 1000);
  const to = new Date(from.getTime() + r.span);
  const stats = await api("GET", `/v1/stats/due?stale=true&from=${from.toISOString()}&to=${to.toISOString()}&step=${r.step}`);
  const select = h("select", { id: "forecast-range", onchange: (ev) => { forecastRange = ev.target.value; drawForecast(box).catch(showError); } },
    Object.entries(RANGES).map(([k, v]) => h("option", { value: k, selected: k === forecastRange }, v.label)));
  fill(box, h("h2", {}, "Due forecast"),
    h("p", {}, select, ` ${fmtCount(stats.total)} tasks fall due`),
    barChart(stats.buckets, r));
}

// barChart draws the forecast: tasks due per step, with a y axis of three
// labelled grid lines and a time label every r.every bars (UTC).
function barChart(bs, r) {
  const W = 900, H = 200, left = 56, right = 8, top = 8, bottom = 34;
  const yMax = axisMax(Math.max(1, ...bs.map((b) => b.count)), true);
  const bw = (W - left - right) / Math.max(bs.length, 1);
  const y = (v) => top + (H - top - bottom) * (1 - v / yMax);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": `tasks due per ${r.unit}` });
  for (const f of [0, 0.5, 1]) {
    svg.append(s("line", { x1: left, y1: y(f * yMax), x2: W - right, y2: y(f * yMax), class: f ? "grid" : "axis-line" }));
    svg.append(s("text", { x: left - 6, y: y(f * yMax) + 4, class: "axis y-tick", "text-anchor": "end" }, fmtCount(f * yMax)));
  }
  svg.append(s("text", { x: 0, y: H - 2, class: "axis" }, `tasks per ${r.unit}`));
  bs.forEach((b, i) => {
    const bh = (b.count / yMax) * (H - top - bottom);
    svg.append(s("rect", { x: left + i * bw + 0.5, y: y(0) - bh, width: Math.max(bw - 1, 1), height: bh, class: "bar" },
      s("title", {}, `${fmtTime(b.start)}: ${fmtCount(b.count)}`)));
    if (i % r.every === 0) {
      const at = new Date(b.start);
      const hm = at.toISOString().slice(11, 16);
      const text = r.span > 24 * 3600e3 ? `${at.toISOString().slice(5, 10)} ${hm}` : hm;
      svg.append(s("line", { x1: left + i * bw, y1: y(0), x2: left + i * bw, y2: y(0) + 4, class: "axis-line" }));
      svg.append(s("text", { x: left + i * bw, y: y(0) + 16, class: "axis x-tick", "text-anchor": "middle" }, text));
    }
  });
  svg.append(s("text", { x: W - right, y: H - 2, class: "axis", "text-anchor": "end" }, "UTC"));
  return svg;
}

// ---- tasks ----------------------------------------------------------------

async function taskList(params) {
  const queues = await allQueues(true);
  const queue = params.get("queue") || "", state = params.get("state") || "";
  const idInput = h("input", { id: "search-id", placeholder: "task id", size: 28 });
  const queueSel = h("select", { id: "filter-queue" }, h("option", { value: "" }, "all queues"),
    queues.map((q) => h("option", { value: q.name, selected: q.name === queue }, q.name)));
  const stateSel = h("select", { id: "filter-state" }, h("option", { value: "" }, "all states"),
    STATES.map((st) => h("option", { value: st, selected: st === state }, st)));
  const table = h("div", { id: "task-list" });
  render(
    h("section", { class: "card wide" }, h("h2", {}, "Tasks"),
      h("form", { id: "search", onsubmit: (ev) => {
        ev.preventDefault();
        const id = idInput.value.trim();
        if (id) location.hash = "#/tasks/" + encodeURIComponent(id);
      } }, idInput, " ", h("button", { type: "submit" }, "Open")),
      h("form", { id: "filter", onsubmit: (ev) => {
        ev.preventDefault();
        const p = new URLSearchParams();
        if (queueSel.value) p.set("queue", queueSel.value);
        if (stateSel.value) p.set("state", stateSel.value);
        location.hash = "#/tasks" + (p.toString() ? "?" + p : "");
      } }, queueSel, " ", stateSel, " ", h("button", { type: "submit" }, "Filter")),
      table));
  const load = async (pageToken) => {
    const p = new URLSearchParams({ limit: "50", stale: "true" });
    if (queue) p.set("queue", queue);
    if (state) p.set("state", state);
    if (pageToken) p.set("page_token", pageToken);
    const res = await api("GET", "/v1/tasks?" + p);
    fill(table,
      res.tasks.length === 0 ? h("p", { class: "muted" }, "No tasks match.") :
        h("table", { id: "tasks" },
          h("thead", {}, h("tr", {}, ["Id", "Queue", "Name", "State", "Due", "Attempts", "Last error"].map((c) => h("th", {}, c)))),
          h("tbody", {}, res.tasks.map((t) => h("tr", { "data-id": t.id },
            h("td", {}, h("a", { href: "#/tasks/" + encodeURIComponent(t.id) }, t.id)), h("td", {}, t.queue), h("td", {}, t.name || ""),
            h("td", {}, stateBadge(t.state)), h("td", {}, fmtTime(t.next_attempt_at || t.execute_at)),
            h("td", { class: "num" }, t.attempts), h("td", { class: "error" }, t.last_error || ""))))),
      res.next_page_token ? h("p", {}, h("button", { id: "next-page", onclick: () => load(res.next_page_token).catch(showError) }, "Next page")) : null);
  };
  await load("");
}

async function taskDetail(id) {
  const t = await api("GET", "/v1/tasks/" + encodeURIComponent(id));
  const rows = [
    ["Id", t.id], ["Queue", h("a", { href: "#/tasks?queue=" + encodeURIComponent(t.queue) }, t.queue)], ["Name", t.name],
    ["State", stateBadge(t.state)], ["Due", fmtTime(t.execute_at)], ["Next attempt", fmtTime(t.next_attempt_at)],
    ["Attempts", `${t.attempts}${t.max_attempts ? " of " + t.max_attempts : ""}`], ["Last error", t.last_error ? h("span", { class: "error" }, t.last_error) : null],
    ["Result", t.result], ["Target", t.target ? `${t.target.method || "POST"} ${t.target.url}` : "pull (leased by workers)"],
    ["Created", fmtTime(t.created_at)], ["Updated", fmtTime(t.updated_at)], ["Fired", fmtTime(t.fired_at)],
    ["Completed", fmtTime(t.completed_at)], ["Lease expires", fmtTime(t.lease_expires_at)], ["Max lateness", t.max_lateness],
    ["Version", t.version],
  ].filter(([, v]) => v !== "" && v !== null && v !== undefined);
  const actions = h("div", { id: "actions", class: "actions" });
  const act = async (what, fn) => {
    try {
      await fn();
      await taskDetail(id);
      notice(what, "info");
    } catch (e) { showError(e); }
  };
  if (t.state === "scheduled") {
    const confirmBox = h("span", { id: "confirm-cancel", hidden: true }, " Cancel this task for good? ",
      h("button", { id: "confirm-cancel-yes", class: "danger", onclick: () => act("Task cancelled.", () => api("DELETE", "/v1/tasks/" + encodeURIComponent(id))) }, "Yes, cancel it"));
    actions.append(h("div", {}, h("button", { id: "cancel", class: "danger", onclick: () => { confirmBox.hidden = false; } }, "Cancel task"), confirmBox));
    const when = h("input", { id: "reschedule-when", placeholder: "10m, 2h, or 2030-01-02T15:04:05Z", size: 30 });
    actions.append(h("form", { id: "reschedule", onsubmit: (ev) => {
      ev.preventDefault();
      const v = when.value.trim();
      if (!v) return;
      const body = /^\d{4}-\d\d-\d\d/.test(v) ? { execute_at: v } : { delay: v };
      act("Task rescheduled.", () => api("PATCH", "/v1/tasks/" + encodeURIComponent(id), body));
    } }, "Reschedule: ", when, " ", h("button", { type: "submit" }, "Reschedule")));
  }
  if (t.state === "dead") {
    actions.append(h("button", { id: "redrive", onclick: () => act("Task scheduled again.", () => api("POST", `/v1/queues/${encodeURIComponent(t.queue)}/redrive`, { id })) }, "Redrive (run again)"));
  }
  const payload = t.payload === undefined ? "(none)" : JSON.stringify(t.payload, null, 2);
  render(h("section", { class: "card wide", id: "task" },
    h("h2", {}, "Task ", h("code", {}, t.id)),
    h("table", { class: "kv", id: "task-fields" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
    h("h3", {}, "Payload"), h("pre", { id: "payload" }, payload),
    actions));
}

// ---- queues ---------------------------------------------------------------

async function queueList() {
  const queues = await allQueues(false);
  const act = async (what, fn) => {
    try { await fn(); await queueList(); notice(what, "info"); } catch (e) { showError(e); }
  };
  const rate = (q) => q.rate_limit ? `${q.rate_limit.per_second}/s (burst ${q.rate_limit.burst || "auto"})` : "none";
  render(h("section", { class: "card wide" }, h("h2", {}, "Queues"),
    queues.length === 0 ? h("p", { class: "muted" }, "No queues yet.") :
      h("table", { id: "queues" },
        h("thead", {}, h("tr", {}, ["Queue", ...STATES, "Rate limit", "Max concurrent", "Max attempts", "Status", ""].map((c) => h("th", {}, c)))),
        h("tbody", {}, queues.map((q) => {
          const path = "/v1/queues/" + encodeURIComponent(q.name);
          return h("tr", { "data-queue": q.name },
            h("td", {}, h("a", { href: "#/tasks?queue=" + encodeURIComponent(q.name) }, q.name)),
            STATES.map((st) => h("td", { class: "num" }, fmtCount(q.tasks[st]))),
            h("td", {}, rate(q)), h("td", { class: "num" }, q.max_concurrent || "∞"), h("td", { class: "num max-attempts" }, q.max_attempts || h("span", { class: "muted", title: "the server's default: the queue sets none" }, `${q.effective.max_attempts} (default)`)),
            h("td", {}, q.paused ? h("span", { class: "bad" }, "paused") : "active"),
            h("td", { class: "actions" },
              q.paused ? h("button", { class: "resume", onclick: () => act(`Queue ${q.name} resumed.`, () => api("POST", path + "/resume")) }, "Resume")
                : h("button", { class: "pause", onclick: () => act(`Queue ${q.name} paused.`, () => api("POST", path + "/pause")) }, "Pause"),
              q.tasks.dead ? h("button", { class: "redrive", onclick: () => act(`Dead tasks of ${q.name} scheduled again.`, () => api("POST", path + "/redrive", {})) }, `Redrive ${q.tasks.dead} dead`) : null));
        })))));
}

// ---- schedules ------------------------------------------------------------

// fmtZoned shows a time as the API gave it, in the schedule's zone
// (RFC 3339 with its offset), readable.
function fmtZoned(t) { return t ? t.replace("T", " ") : ""; }

function scheduleRule(sc) {
  return (sc.cron ? "cron " + sc.cron : "every " + sc.every) + " in " + sc.time_zone + (sc.jitter ? `, jitter up to ${sc.jitter}` : "");
}

async function scheduleList() {
  const out = [];
  let page = "";
  do {
    const res = await api("GET", "/v1/schedules" + (page ? "?page_token=" + encodeURIComponent(page) : ""));
    out.push(...res.schedules);
    page = res.next_page_token || "";
  } while (page);
  render(h("section", { class: "card wide" }, h("h2", {}, "Schedules"),
    out.length === 0 ? h("p", { class: "muted" }, "No schedules yet: POST /v1/schedules, or hourglass schedule create.") :
      h("table", { id: "schedules" },
        h("thead", {}, h("tr", {}, ["Schedule", "Rule", "Next run", "Occurrences", "Missed", "Status"].map((c) => h("th", {}, c)))),
        h("tbody", {}, out.map((sc) => h("tr", { "data-schedule": sc.id },
          h("td", {}, h("a", { href: "#/schedules/" + encodeURIComponent(sc.id) }, sc.id)),
          h("td", {}, scheduleRule(sc)),
          h("td", {}, fmtZoned(sc.next_runs[0])),
          h("td", { class: "num" }, fmtCount(sc.occurrences)),
          h("td", { class: "num" }, fmtCount(sc.missed)),
          h("td", {}, sc.paused ? h("span", { class: "bad" }, "paused") : "active")))))));
}

async function scheduleDetail(id) {
  const path = "/v1/schedules/" + encodeURIComponent(id);
  const sc = await api("GET", path);
  const act = async (what, fn) => {
    try { await fn(); await scheduleDetail(id); notice(what, "info"); } catch (e) { showError(e); }
  };
  const t = sc.task;
  const rows = [
    ["Id", sc.id], ["Rule", scheduleRule(sc)], ["Status", sc.paused ? h("span", { class: "bad" }, "paused") : "active"],
    ["Starts", fmtTime(sc.start_at)], ["Ends", fmtTime(sc.end_at)],
    ["Overlap", sc.overlap], ["Catch-up", `${sc.catch_up} within ${sc.catch_up_window}`],
    ["Queue", h("a", { href: "#/tasks?queue=" + encodeURIComponent(t.queue) }, t.queue)],
    ["Target", t.target ? `${t.target.method || "POST"} ${t.target.url}` : "pull (leased by workers)"],
    ["Occurrences", `${fmtCount(sc.occurrences)} created, ${fmtCount(sc.missed)} missed`],
    ["Created", fmtTime(sc.created_at)], ["Updated", fmtTime(sc.updated_at)], ["Version", sc.version],
  ].filter(([, v]) => v !== "" && v !== null && v !== undefined);
  const confirmBox = h("span", { id: "confirm-delete", hidden: true }, " Delete this schedule (and its occurrences not started)? ",
    h("button", { id: "confirm-delete-yes", class: "danger", onclick: () => act("Schedule deleted.", async () => { await api("DELETE", path); location.hash = "#/schedules"; }) }, "Yes, delete it"));
  const actions = h("div", { id: "actions", class: "actions" },
    sc.paused ? h("button", { id: "resume", onclick: () => act("Schedule resumed.", () => api("POST", path + "/resume")) }, "Resume")
      : h("button", { id: "pause", onclick: () => act("Schedule paused.", () => api("POST", path + "/pause")) }, "Pause"),
    " ", h("button", { id: "delete", class: "danger", onclick: () => { confirmBox.hidden = false; } }, "Delete"), confirmBox);
  render(h("section", { class: "card wide", id: "schedule" },
    h("h2", {}, "Schedule ", h("code", {}, sc.id)),
    h("table", { class: "kv", id: "schedule-fields" }, h("tbody", {}, rows.map(([k, v]) => h("tr", {}, h("th", {}, k), h("td", {}, v))))),
    h("h3", {}, `Next runs (${sc.time_zone})`),
    sc.next_runs.length ? h("ol", { id: "next-runs" }, sc.next_runs.map((r) => h("li", {}, fmtZoned(r)))) : h("p", { class: "muted" }, "None while paused."),
    h("h3", {}, "Recent occurrences"),
    (sc.recent || []).length === 0 ? h("p", { class: "muted" }, "None yet.") :
      h("table", { id: "occurrences" },
        h("thead", {}, h("tr", {}, ["Task", "Due", "State", "Attempts", "Last error"].map((c) => h("th", {}, c)))),
        h("tbody", {}, sc.recent.map((o) => h("tr", {},
          h("td", {}, h("a", { href: "#/tasks/" + encodeURIComponent(o.task_id) }, o.task_id)),
          h("td", {}, fmtTime(o.execute_at)), h("td", {}, stateBadge(o.state)),
          h("td", { class: "num" }, o.attempts), h("td", { class: "error" }, o.last_error || ""))))),
    actions));
}

window.addEventListener("hashchange", route);
route();
