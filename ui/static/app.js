// vpcflow topology page: reads the REST API and /metrics, nothing else.
// It fetches only what it shows: per open vSwitch one page of hosts, the
// route entries' page, the counts from X-Total-Count (a closed vSwitch's
// host count from the vSwitch list's host_count, or, filtered, from a page
// of one); the filter box is the lists' ?q, applied by the server.
"use strict";

const PAGE = 50;               // hosts (route entries) shown per page
const TOPOLOGY_EVERY = 3000;
const COUNTERS_EVERY = 2000;
const BIG_VPC = 2000;          // hosts: above this a VPC's lists are refreshed less often
const BIG_VPC_EVERY = 30000;
const OPEN_VSWITCHES = 8;      // a VPC with more vSwitches shows them closed until opened
const CLOSED_COUNTS = 32;      // closed vSwitches of a VPC whose filtered host count is asked for (a page of one each)
const TRACE_HOSTS = 50;        // hosts offered by the trace form, found by what is typed
const MAX_Q = 63;              // the API's longest ?q

const state = {
  token: sessionStorage.getItem("vpcflow-token") || "",
  vpcs: [], chassis: [], switches: [], perVPC: {},
  closed: new Set(),   // VPCs the user closed
  vswOpen: {},         // "vpc/vswitch" → the user's open (true) or closed (false)
  pages: {},           // list key → { tokens: page tokens of the pages visited ("" the first), at: the one shown }
  filter: "",
  loading: null, again: false, fresh: new Set(), freshAll: false,
  traceHosts: { key: "", at: 0 },
  counters: null, lastCounters: null,
};

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

// send makes one request and returns its data (JSON, or text when text)
// and headers.
async function send(method, path, body, text) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    $("#token-box").classList.remove("hidden");
    throw new Error("the API wants a bearer token");
  }
  const raw = await r.text();
  if (text && r.ok) return { data: raw, headers: r.headers };
  let data = null;
  try { data = JSON.parse(raw); } catch (e) { data = raw; }
  if (!r.ok) {
    const err = new Error((data && data.error) ? (data.field ? data.field + ": " : "") + data.error : r.status + " " + r.statusText);
    err.status = r.status;
    throw err;
  }
  return { data, headers: r.headers };
}
const request = async (method, path, body, text) => (await send(method, path, body, text)).data;
const get = (p) => request("GET", p);
const enc = encodeURIComponent;

// getPage fetches one page of a list: its items, how many match (every
// page together) and the next page's token ("" on the last).
async function getPage(path, params) {
  const q = new URLSearchParams(params);
  const r = await send("GET", path + "?" + q);
  const h = r.headers.get("X-Total-Count"); // Number(null) would be 0
  const total = h === null || h === "" ? NaN : Number(h);
  return { items: r.data, total: Number.isFinite(total) ? total : r.data.length, next: r.headers.get("X-Next-Page-Token") || "" };
}

// query is the filter box as the lists' ?q ("" when it cannot match).
const query = () => (state.filter.length <= MAX_Q ? state.filter : "");

function pageOf(key) {
  return state.pages[key] || (state.pages[key] = { tokens: [""], at: 0 });
}

// listPage fetches the page shown of list key (path with params); back
// to the first page when the one shown has emptied.
async function listPage(key, path, params) {
  const pg = pageOf(key);
  const ask = () => {
    const p = { ...params, limit: PAGE };
    if (query()) p.q = query();
    if (pg.tokens[pg.at]) p.page_token = pg.tokens[pg.at];
    return getPage(path, p);
  };
  let list = await ask();
  if (list.items.length === 0 && pg.at > 0) {
    pg.tokens = [""]; pg.at = 0;
    list = await ask();
  }
  return list;
}

const vswKey = (vpc, w) => vpc + "/" + w;
const routesKey = (vpc) => vpc + "/#routes";
function vswitchOpen(vpc, w, count) {
  const v = state.vswOpen[vswKey(vpc, w)];
  return v === undefined ? count <= OPEN_VSWITCHES : v;
}

// ---- topology ----

// refresh loads the topology again, once at a time: asked while a load
// runs, it runs once more after it. fresh names a VPC (true: every VPC)
// whose counts and lists must be fetched now, because the user asked for
// something else (a page, the filter, a vSwitch or VPC opened).
function refresh(fresh) {
  if (fresh === true) state.freshAll = true;
  else if (fresh) state.fresh.add(fresh);
  if (state.loading) {
    state.again = true;
    return state.loading;
  }
  state.loading = (async () => {
    try {
      do {
        state.again = false;
        const fresh = { all: state.freshAll, vpcs: state.fresh };
        state.freshAll = false; state.fresh = new Set();
        await loadTopology(fresh);
      } while (state.again);
    } finally {
      state.loading = null;
    }
  })();
  return state.loading;
}

// gone is a request's 404: what it asked for was deleted after the list
// that named it was read (a VPC or vSwitch deleted during a refresh).
// That VPC or vSwitch is left out of this refresh instead of failing it.
const gone = (e) => e && e.status === 404;

// loadTopology fetches what the page shows. A VPC's counts and lists are
// fetched every time, or every 30 s for a VPC of more than BIG_VPC hosts
// unless fresh names it.
async function loadTopology(fresh) {
  const [vpcs, chassis, switches] = await Promise.all([get("/v1/vpcs"), get("/v1/chassis"), get("/v1/switches")]);
  const per = {};
  const deleted = new Set(); // VPCs gone during this refresh
  await Promise.all(vpcs.map((v) => loadVPC(v, fresh, per).catch((e) => {
    if (!gone(e)) throw e;
    deleted.add(v.name);
  })));
  state.vpcs = vpcs.filter((v) => !deleted.has(v.name)); state.chassis = chassis; state.switches = switches;
  state.perVPC = per;
  render();
}

// loadVPC fetches one VPC's vSwitches, counts and open lists into per.
async function loadVPC(v, fresh, per) {
  const base = "/v1/vpcs/" + enc(v.name);
  const prev = state.perVPC[v.name] || { lists: {} };
  const vswitches = await get(base + "/vswitches");
  // What is kept from the last refresh: the lists and counts of the
  // vSwitches there still are (and the route entries').
  const names = new Set(vswitches.map((w) => vswKey(v.name, w.name)).concat(routesKey(v.name)));
  const keep = (m) => Object.fromEntries(Object.entries(m || {}).filter(([k]) => names.has(k)));
  // vswHosts: "vpc/vswitch" → its host count (matching the filter),
  // from its page shown when open, a page of one when closed.
  const d = { vswitches, hosts: prev.hosts ?? null, routes: prev.routes ?? null, lists: keep(prev.lists), vswHosts: keep(prev.vswHosts), at: prev.at || 0 };
  per[v.name] = d;
  const due = fresh.all || fresh.vpcs.has(v.name) || !d.at || d.hosts === null || d.hosts <= BIG_VPC || Date.now() - d.at >= BIG_VPC_EVERY;
  if (!due) return;
  d.at = Date.now();
  const open = !state.closed.has(v.name);
  // The VPC's counts: a page of one, for its X-Total-Count.
  const counts = [
    getPage(base + "/hosts", { limit: 1 }).then((l) => { d.hosts = l.total; }),
  ];
  if (open) {
    counts.push(listPage(routesKey(v.name), base + "/subnets", {}).then((l) => {
      d.lists[routesKey(v.name)] = l;
      if (!query()) d.routes = l.total;
    }));
  }
  if (!open || query()) counts.push(getPage(base + "/subnets", { limit: 1 }).then((l) => { d.routes = l.total; }));
  const vswGone = new Set(); // vSwitches deleted since their list was read
  const ofVSwitch = (w, p) => p.catch((e) => {
    if (!gone(e)) throw e;
    vswGone.add(w.name);
  });
  if (open) {
    let closed = 0;
    for (const w of vswitches) {
      const key = vswKey(v.name, w.name);
      if (vswitchOpen(v.name, w.name, vswitches.length)) {
        counts.push(ofVSwitch(w, listPage(key, base + "/hosts", { vswitch: w.name }).then((l) => { d.lists[key] = l; d.vswHosts[key] = l.total; })));
        continue;
      }
      // Closed: its count only. Unfiltered, the vSwitch list has it
      // (host_count), for every vSwitch; filtered, a page of one with
      // the filter, for the first CLOSED_COUNTS of them: a VPC of 1,000
      // vSwitches is not 1,000 requests a refresh.
      if (!query() && typeof w.host_count === "number") { d.vswHosts[key] = w.host_count; continue; }
      if (++closed > CLOSED_COUNTS) { delete d.vswHosts[key]; continue; }
      const p = { vswitch: w.name, limit: 1 };
      if (query()) p.q = query();
      counts.push(ofVSwitch(w, getPage(base + "/hosts", p).then((l) => { d.vswHosts[key] = l.total; })));
    }
  }
  await Promise.all(counts);
  if (vswGone.size) {
    d.vswitches = vswitches.filter((w) => !vswGone.has(w.name));
    for (const name of vswGone) {
      delete d.lists[vswKey(v.name, name)];
      delete d.vswHosts[vswKey(v.name, name)];
    }
  }
}

// A host is up when its interface is a port of a connected switch.
function portIndex() {
  const byBridge = new Map(), byDPID = new Set();
  for (const s of state.switches) {
    byDPID.add(s.dpid);
    for (const p of s.ports || []) byBridge.set((s.bridge || "") + "/" + p.name, p);
  }
  const chassisBridge = new Map(state.chassis.map((c) => [c.name, c.bridge]));
  return (h) => {
    if (h.dpid) return byDPID.has(h.dpid) ? "up" : "down";
    const bridge = h.chassis ? chassisBridge.get(h.chassis) : h.bridge;
    const p = byBridge.get(bridge + "/" + h.interface);
    return p && p.ofport > 0 ? "up" : "down";
  };
}

// pager draws a list's page number and its previous/next buttons.
function pager(key, list) {
  const pg = pageOf(key);
  const pages = Math.max(1, Math.ceil(list.total / PAGE), pg.at + 1);
  if (pages <= 1 && !list.next) return "";
  return `<div class="pager" data-pager="${esc(key)}">page ${pg.at + 1} of ${pages}
    <button data-page="${esc(key)}" data-dir="prev" ${pg.at === 0 ? "disabled" : ""}>‹ prev</button>
    <button data-page="${esc(key)}" data-dir="next" data-token="${esc(list.next)}" ${list.next ? "" : "disabled"}>next ›</button></div>`;
}

const count = (n, what) => (n === null || n === undefined ? "?" : n) + " " + what;

function render() {
  const up = portIndex();
  const root = $("#vpcs");
  const html = [];
  const q = query();
  for (const v of state.vpcs) {
    const d = state.perVPC[v.name] || { vswitches: [], hosts: null, routes: null, lists: {} };
    html.push(`<details class="vpc" data-vpc="${esc(v.name)}" ${state.closed.has(v.name) ? "" : "open"}>
      <summary>VPC ${esc(v.name)} <span class="meta">id ${v.id}${v.cidr ? " · " + esc(v.cidr) : ""} · ${d.vswitches.length} vSwitches · ${count(d.hosts, "hosts")} · ${count(d.routes, "route entries")}</span></summary><div class="body">`);
    for (const w of d.vswitches) {
      const key = vswKey(v.name, w.name);
      const list = d.lists[key];
      const open = vswitchOpen(v.name, w.name, d.vswitches.length);
      const total = d.vswHosts ? d.vswHosts[key] : undefined;
      const n = total === undefined || total === null ? "" : `${total} ${q ? "matching " : ""}hosts`;
      html.push(`<details class="vswitch" data-vswitch="${esc(w.name)}" data-key="${esc(key)}" ${open ? "open" : ""}><summary><h3>vSwitch ${esc(w.name)} <span class="meta">${esc(w.cidr)} · gateway ${esc(w.gateway)}${n ? " · " + n : ""}</span>
        <span class="counter" data-counter="${esc(key)}"></span></h3></summary>`);
      if (open && list) {
        html.push(`<table class="hosts"><thead><tr><th>host</th><th>IP</th><th>MAC</th><th>port</th><th>chassis</th><th>state</th></tr></thead><tbody>`);
        for (const h of list.items) {
          const s = up(h);
          const port = h.dpid ? `${esc(h.dpid)}:${h.ofport}` : `${esc(h.bridge || "")}${h.bridge ? "/" : ""}${esc(h.interface)}`;
          html.push(`<tr class="host" data-host="${esc(h.name)}"><td>${esc(h.name)}</td><td>${esc(h.ip)}</td><td>${esc(h.mac)}</td><td>${port}</td><td>${esc(h.chassis || "-")}</td><td class="${s}">${s}</td></tr>`);
        }
        html.push(`</tbody></table>`, pager(key, list));
      }
      html.push(`</details>`);
    }
    const rkey = routesKey(v.name), routes = d.lists[rkey];
    html.push(`<h3>Route entries${routes && q ? ` <span class="meta">${routes.total} matching</span>` : ""}</h3><table class="routes"><thead><tr><th>name</th><th>destination</th><th>next hop</th></tr></thead><tbody>`);
    for (const r of routes ? routes.items : []) {
      html.push(`<tr class="route" data-route="${esc(r.name)}"><td>${esc(r.name)}</td><td>${esc(r.cidr)}</td><td>host ${esc(r.host)}</td></tr>`);
    }
    html.push(`</tbody></table>`, routes ? pager(rkey, routes) : "", `</div></details>`);
  }
  root.innerHTML = html.join("") || "<p>No VPC yet.</p>";
  for (const el of root.querySelectorAll("details.vpc")) {
    el.addEventListener("toggle", () => {
      const name = el.dataset.vpc;
      if (el.open === !state.closed.has(name)) return; // drawn so, not toggled
      if (el.open) { state.closed.delete(name); refresh(name).catch(showError); } else state.closed.add(name);
    });
  }
  for (const el of root.querySelectorAll("details.vswitch")) {
    el.addEventListener("toggle", () => {
      const vpc = el.closest("details.vpc").dataset.vpc, key = el.dataset.key;
      const d = state.perVPC[vpc];
      if (el.open === vswitchOpen(vpc, el.dataset.vswitch, d ? d.vswitches.length : 0)) return;
      state.vswOpen[key] = el.open;
      if (el.open) refresh(vpc).catch(showError);
    });
  }
  for (const b of root.querySelectorAll("button[data-page]")) {
    b.addEventListener("click", () => {
      const pg = pageOf(b.dataset.page);
      if (b.dataset.dir === "next") {
        pg.tokens[pg.at + 1] = b.dataset.token;
        pg.at++;
      } else if (pg.at > 0) pg.at--;
      refresh(b.closest("details.vpc").dataset.vpc).catch(showError);
    });
  }

  $("#switches tbody").innerHTML = state.switches.map((s) =>
    `<tr class="switch" data-dpid="${esc(s.dpid)}"><td>${esc(s.dpid)}</td><td>${esc(s.bridge || "-")}</td><td>${esc(s.remote)}</td><td>${esc(s.connected_since)}</td><td>${(s.ports || []).map((p) => esc(p.name) + ":" + p.ofport).join(", ")}</td></tr>`).join("")
    || `<tr><td colspan="5">no switch connected</td></tr>`;
  const bridges = new Set(state.switches.map((s) => s.bridge));
  $("#chassis tbody").innerHTML = state.chassis.map((c) =>
    `<tr class="chassis" data-chassis="${esc(c.name)}"><td>${esc(c.name)}</td><td>${esc(c.tunnel_ip)}</td><td>${esc(c.bridge)}</td><td class="${bridges.has(c.bridge) ? "up" : "down"}">${bridges.has(c.bridge) ? "connected" : "not connected"}</td></tr>`).join("")
    || `<tr><td colspan="4">no chassis</td></tr>`;

  const sel = $("#t-vpc"), cur = sel.value;
  sel.innerHTML = state.vpcs.map((v) => `<option>${esc(v.name)}</option>`).join("");
  if (cur) sel.value = cur;
  fillHosts().catch(showError);
  renderCounters();
  $("#status").textContent = `${state.vpcs.length} VPCs · ${state.switches.length} switches · updated ${new Date().toLocaleTimeString()}`;
}

// fillHosts offers the trace form the first TRACE_HOSTS hosts of its VPC
// that match what "from host" holds, asked again when either changes
// (or every 30 s).
async function fillHosts() {
  const vpc = $("#t-vpc").value, typed = $("#t-from").value.trim();
  if (!vpc) return;
  const key = vpc + "\n" + typed;
  if (key === state.traceHosts.key && Date.now() - state.traceHosts.at < BIG_VPC_EVERY) return;
  state.traceHosts = { key, at: Date.now() };
  const params = { limit: TRACE_HOSTS };
  if (typed && typed.length <= MAX_Q) params.q = typed;
  const list = await getPage("/v1/vpcs/" + enc(vpc) + "/hosts", params);
  if (state.traceHosts.key !== key) return; // typed on meanwhile
  $("#t-hosts").innerHTML = list.items.map((h) => `<option value="${esc(h.name)}">${esc(h.ip)}</option>`).join("");
}

// ---- live counters, from /metrics ----

function parseMetrics(text) {
  const out = { forwarded: new Map(), dropped: new Map(), at: Date.now() };
  for (const line of text.split("\n")) {
    const m = line.match(/^vpcflow_(forwarded|dropped)_packets_total\{([^}]*)\} (\S+)/);
    if (!m) continue;
    const labels = {};
    for (const kv of m[2].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[kv[1]] = kv[2];
    const key = (labels.vpc || "(unclassified)") + "/" + (labels.vswitch || "-");
    const map = out[m[1]];
    const e = map.get(key) || { total: 0, reasons: {} };
    e.total += Number(m[3]);
    if (labels.reason) e.reasons[labels.reason] = (e.reasons[labels.reason] || 0) + Number(m[3]);
    map.set(key, e);
  }
  return out;
}

async function loadCounters() {
  const text = await request("GET", "/metrics", undefined, true);
  state.lastCounters = state.counters;
  state.counters = parseMetrics(text);
  renderCounters();
}

function rate(kind, key) {
  const a = state.lastCounters, b = state.counters;
  if (!a || !b) return "";
  const x = a[kind].get(key), y = b[kind].get(key);
  if (!x || !y) return "";
  const r = (y.total - x.total) / ((b.at - a.at) / 1000);
  return ` <span class="rate">${r > 0 ? r.toFixed(1) : "0"}/s</span>`;
}

function renderCounters() {
  const c = state.counters;
  if (!c) return;
  const keys = new Set([...c.forwarded.keys(), ...c.dropped.keys()]);
  const rows = [];
  for (const key of [...keys].sort()) {
    const f = c.forwarded.get(key), d = c.dropped.get(key);
    const reasons = d ? Object.entries(d.reasons).filter(([, n]) => n > 0).map(([r, n]) => `${esc(r)} ${n}`).join(", ") : "";
    rows.push(`<tr data-key="${esc(key)}"><td>${esc(key)}</td><td class="counter fwd">${f ? f.total : 0}${rate("forwarded", key)}</td><td class="counter drop">${d ? d.total : 0}${rate("dropped", key)}</td><td>${reasons}</td></tr>`);
  }
  $("#counters tbody").innerHTML = rows.join("");
  for (const el of document.querySelectorAll("[data-counter]")) {
    const f = c.forwarded.get(el.dataset.counter), d = c.dropped.get(el.dataset.counter);
    el.textContent = ` · forwarded ${f ? f.total : 0} · dropped ${d ? d.total : 0}`;
  }
  $("#counters-age").textContent = "updated " + new Date(c.at).toLocaleTimeString();
}

// ---- trace ----

async function runTrace(ev) {
  ev.preventDefault();
  const req = { vpc: $("#t-vpc").value, from: $("#t-from").value.trim(), dst: $("#t-dst").value.trim(), proto: $("#t-proto").value };
  const port = Number($("#t-port").value);
  if (port) req.dst_port = port;
  if ($("#t-src").value.trim()) req.src = $("#t-src").value.trim();
  if ($("#t-installed").checked) req.installed = true;
  const out = $("#trace-result");
  out.innerHTML = "tracing…";
  try {
    drawTrace(await request("POST", "/v1/trace", req));
  } catch (e) {
    out.innerHTML = `<p class="error">${esc(e.message)}</p>`;
  }
}

function drawTrace(res) {
  const html = [`<div class="verdict ${esc(res.verdict)}" data-verdict="${esc(res.verdict)}">${esc(res.summary)}</div>`];
  res.hops.forEach((h, i) => {
    if (i > 0) html.push(`<div class="tunnel">⇣ ${esc(res.hops[i - 1].out)}</div>`);
    html.push(`<div class="hop"><div class="where">${h.chassis ? "chassis " + esc(h.chassis) : "switch"} ${esc(h.dpid)} <span class="meta">in_port ${h.in_port} (${esc(h.from)})</span></div><div class="path">`);
    h.steps.forEach((s, j) => {
      if (j > 0) html.push(`<span class="arrow">→</span>`);
      html.push(`<div class="step ${s.drop ? "drop" : ""}" title="${esc(s.flow || "no flow matched")}"><div class="t">${s.table} ${esc(s.table_name)}</div>
        <div>${esc(s.object)}</div>${(s.rewrites || []).map((r) => `<div class="rw">→ ${esc(r)}</div>`).join("")}${s.drop ? `<div>✗ ${esc(s.drop)}</div>` : ""}</div>`);
    });
    html.push(`</div><div class="out">out: ${esc(h.out)}</div></div>`);
  });
  if (res.installed) {
    html.push(res.drift && res.drift.length
      ? `<div class="drift"><b>Drift</b> — on the installed flows: ${esc(res.installed.summary)}<ul>${res.drift.map((d) => `<li>${esc(d.kind)} table ${d.table}: ${esc(d.desired || "")} ${d.installed ? "⇢ installed " + esc(d.installed) : ""}</li>`).join("")}</ul></div>`
      : `<div class="drift">Installed flows: same path, no drift.</div>`);
  }
  $("#trace-result").innerHTML = html.join("");
}

// ---- wiring ----

function showError(e) { $("#status").textContent = "error: " + e.message; }

function every(ms, fn) {
  const tick = () => fn().catch(showError).finally(() => setTimeout(tick, ms));
  tick();
}

// debounce runs fn once input has paused for ms.
function debounce(ms, fn) {
  let timer = 0;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

$("#trace-form").addEventListener("submit", runTrace);
$("#t-vpc").addEventListener("change", () => fillHosts().catch(showError));
$("#t-from").addEventListener("input", debounce(250, () => fillHosts().catch(showError)));
// The filter is the server's: every list back to its first page, fetched again.
$("#filter").addEventListener("input", debounce(250, (e) => {
  const f = e.target.value.trim();
  if (f === state.filter) return;
  state.filter = f; state.pages = {};
  refresh(true).catch(showError);
}));
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("vpcflow-token", state.token);
  $("#token-box").classList.add("hidden");
  refresh(true).catch(showError);
});
every(TOPOLOGY_EVERY, () => refresh());
every(COUNTERS_EVERY, loadCounters);
