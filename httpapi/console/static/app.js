// Hourglass web console: a page per hash route (#/, #/tasks, #/tasks/ID,
// #/queues), drawn from the node's own HTTP API. Every value from the API
// reaches the page as text (textContent), never as HTML.
"use strict";

const STATES = ["scheduled", "running", "succeeded", "dead", "cancelled", "expired"];
const main = document.getElementById("main");
const noticeBox = document.getElementById("notice");
let token = localStorage.getItem("hourglass-token") || "";
let refreshTimer = null;
let forecastRange = "1h";
let lastFiring = null; // the previous metrics sample, for rates

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
  const page = path.startsWith("/tasks") ? "tasks" : path.startsWith("/queues") ? "queues" : "overview";
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.page === page);
  try {
    if (path === "/" || path === "") await overview();
    else if (path === "/tasks") await taskList(params);
    else if (path.startsWith("/tasks/")) await taskDetail(decodeURIComponent(path.slice("/tasks/".length)));
    else if (path === "/queues") await queueList();
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
    h("p", {}, "This server requires an API token (started with --auth-token)."),
    h("form", { onsubmit: (ev) => {
      ev.preventDefault();
      token = input.value.trim();
      localStorage.setItem("hourglass-token", token);
      route();
    } }, input, " ", h("button", { type: "submit" }, "Sign in"))));
}

// ---- overview -------------------------------------------------------------

async function overview() {
  const cluster = h("section", { class: "card wide", id: "cluster" }, h("h2", {}, "Cluster"));
  const firing = h("section", { class: "card", id: "firing" }, h("h2", {}, "Firing"));
  const tasks = h("section", { class: "card", id: "tasks-by-queue" }, h("h2", {}, "Tasks by queue and state"));
  const forecast = h("section", { class: "card wide", id: "forecast" }, h("h2", {}, "Due forecast"));
  render(h("div", { class: "grid" }, cluster, firing, tasks, forecast));
  const refresh = async () => {
    try {
      const [info, queues, metrics] = await Promise.all([
        api("GET", "/v1/cluster"), api("GET", "/v1/queues?stale=true"), fetchMetrics()]);
      drawCluster(cluster, info);
      drawFiring(firing, metrics, info);
      drawTasks(tasks, queues.queues);
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
  fill(box,
    h("h2", {}, "Cluster"),
    h("p", {}, "Leader: ", h("strong", { id: "leader" }, leader), ` · term ${info.term} · commit ${fmtCount(info.commit_index)} · applied ${fmtCount(info.applied_index)}`),
    h("table", { id: "nodes" },
      h("thead", {}, h("tr", {}, ["Node", "Role", "HTTP", "Raft", "Voter", "Reachable"].map((c) => h("th", {}, c)))),
      h("tbody", {}, info.nodes.map((n) => h("tr", {},
        h("td", {}, n.id), h("td", {}, h("span", { class: "role role-" + n.state }, n.state)),
        h("td", {}, n.http_addr || ""), h("td", {}, n.raft_addr || ""),
        h("td", {}, n.voter ? "yes" : "no"), h("td", {}, n.alive ? "yes" : h("span", { class: "bad" }, "no")))))));
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

function drawFiring(box, metrics, info) {
  const rows = [];
  if (!metrics) {
    fill(box, h("h2", {}, "Firing"), h("p", { class: "muted" }, "/metrics is not available on this node."));
    return;
  }
  const now = Date.now();
  const fired = sum(metrics, "hourglass_tasks_fired_total");
  const lat = buckets(metrics, "hourglass_fire_lateness_seconds");
  let rate = null, recent = null;
  if (lastFiring && now > lastFiring.at) {
    rate = Math.max(0, fired - lastFiring.fired) / ((now - lastFiring.at) / 1000);
    const delta = lat.map((b, i) => ({ le: b.le, count: b.count - ((lastFiring.lat[i] || {}).count || 0) }));
    if (delta.length && delta[delta.length - 1].count > 0) recent = delta;
  }
  lastFiring = { at: now, fired, lat };
  const isLeader = sum(metrics, "hourglass_raft_leader") === 1;
  rows.push(["Fire rate", rate === null ? "measuring…" : rate.toFixed(1) + " /s"]);
  rows.push(["Fired since start", fmtCount(fired)]);
  rows.push(["Lateness p50 / p99 (since start)", `${fmtSeconds(quantile(lat, 0.5))} / ${fmtSeconds(quantile(lat, 0.99))}`]);
  if (recent) rows.push(["Lateness p99 (last 3 s)", fmtSeconds(quantile(recent, 0.99))]);
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
      "This node is not the leader: it fires nothing. ",
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

const RANGES = {
  "1h": { span: 3600e3, step: "1m", label: "next hour, per minute" },
  "24h": { span: 24 * 3600e3, step: "1h", label: "next 24 hours, per hour" },
  "7d": { span: 7 * 24 * 3600e3, step: "6h", label: "next 7 days, per 6 hours" },
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
    barChart(stats.buckets));
}

function barChart(bs) {
  const W = 900, H = 160, pad = 28;
  const max = Math.max(1, ...bs.map((b) => b.count));
  const bw = (W - pad) / Math.max(bs.length, 1);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H + 20}`, class: "chart", role: "img", "aria-label": "tasks due per step" });
  svg.append(s("text", { x: 0, y: 12, class: "axis" }, fmtCount(max)));
  svg.append(s("line", { x1: pad, y1: H, x2: W, y2: H, class: "axis-line" }));
  bs.forEach((b, i) => {
    const bh = (b.count / max) * (H - 16);
    const rect = s("rect", { x: pad + i * bw + 0.5, y: H - bh, width: Math.max(bw - 1, 1), height: bh, class: "bar" },
      s("title", {}, `${fmtTime(b.start)}: ${fmtCount(b.count)}`));
    svg.append(rect);
  });
  if (bs.length) {
    svg.append(s("text", { x: pad, y: H + 16, class: "axis" }, fmtTime(bs[0].start)));
    svg.append(s("text", { x: W, y: H + 16, class: "axis", "text-anchor": "end" }, fmtTime(bs[bs.length - 1].start)));
  }
  return svg;
}

// ---- tasks ----------------------------------------------------------------

async function taskList(params) {
  const queues = (await api("GET", "/v1/queues?stale=true")).queues;
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
    ["Id", t.id], ["Queue", h("a", { href: "#/tasks?queue=" + encodeURIComponent(t.queue) }, t.queue)], ["Name", t.name || ""],
    ["State", stateBadge(t.state)], ["Due", fmtTime(t.execute_at)], ["Next attempt", fmtTime(t.next_attempt_at)],
    ["Attempts", `${t.attempts}${t.max_attempts ? " of " + t.max_attempts : ""}`], ["Last error", h("span", { class: "error" }, t.last_error || "")],
    ["Result", t.result || ""], ["Target", t.target ? `${t.target.method || "POST"} ${t.target.url}` : "pull (leased by workers)"],
    ["Created", fmtTime(t.created_at)], ["Updated", fmtTime(t.updated_at)], ["Fired", fmtTime(t.fired_at)],
    ["Completed", fmtTime(t.completed_at)], ["Lease expires", fmtTime(t.lease_expires_at)], ["Max lateness", t.max_lateness || ""],
    ["Version", t.version],
  ];
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
  const queues = (await api("GET", "/v1/queues")).queues;
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
            h("td", {}, rate(q)), h("td", { class: "num" }, q.max_concurrent || "∞"), h("td", { class: "num" }, q.max_attempts || ""),
            h("td", {}, q.paused ? h("span", { class: "bad" }, "paused") : "active"),
            h("td", { class: "actions" },
              q.paused ? h("button", { class: "resume", onclick: () => act(`Queue ${q.name} resumed.`, () => api("POST", path + "/resume")) }, "Resume")
                : h("button", { class: "pause", onclick: () => act(`Queue ${q.name} paused.`, () => api("POST", path + "/pause")) }, "Pause"),
              q.tasks.dead ? h("button", { class: "redrive", onclick: () => act(`Dead tasks of ${q.name} scheduled again.`, () => api("POST", path + "/redrive", {})) }, `Redrive ${q.tasks.dead} dead`) : null));
        })))));
}

window.addEventListener("hashchange", route);
route();
