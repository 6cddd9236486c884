// vpcflow topology page: reads the REST API and /metrics, nothing else.
"use strict";

const PAGE = 50;           // hosts shown per vSwitch page
const TOPOLOGY_EVERY = 3000;
const COUNTERS_EVERY = 2000;
const BIG_VPC = 2000;          // hosts: above this a VPC's host list is refreshed less often
const BIG_VPC_EVERY = 30000;

const state = {
  token: sessionStorage.getItem("vpcflow-token") || "",
  vpcs: [], chassis: [], switches: [], perVPC: {},
  closed: new Set(), pages: {}, filter: "",
  counters: null, lastCounters: null,
};

const $ = (sel) => document.querySelector(sel);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

async function request(method, path, body, text) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (state.token) headers.Authorization = "Bearer " + state.token;
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (r.status === 401) {
    $("#token-box").classList.remove("hidden");
    throw new Error("the API wants a bearer token");
  }
  const raw = await r.text();
  if (text && r.ok) return raw;
  let data = null;
  try { data = JSON.parse(raw); } catch (e) { data = raw; }
  if (!r.ok) throw new Error((data && data.error) ? (data.field ? data.field + ": " : "") + data.error : r.status + " " + r.statusText);
  return data;
}
const get = (p) => request("GET", p);
const enc = encodeURIComponent;

// ---- topology ----

async function loadTopology() {
  const [vpcs, chassis, switches] = await Promise.all([get("/v1/vpcs"), get("/v1/chassis"), get("/v1/switches")]);
  state.vpcs = vpcs; state.chassis = chassis; state.switches = switches;
  const per = {};
  await Promise.all(vpcs.map(async (v) => {
    const base = "/v1/vpcs/" + enc(v.name);
    const prev = state.perVPC[v.name] || {};
    // A closed VPC costs nothing; the host and route entry lists of a big
    // one (thousands) are fetched again every 30 s only.
    const list = async (what) => {
      const have = prev[what], at = prev[what + "At"] || 0;
      if (state.closed.has(v.name) || (have && have.length > BIG_VPC && Date.now() - at < BIG_VPC_EVERY)) return [have || null, at];
      return [await get(base + "/" + what), Date.now()];
    };
    const [vswitches, [hosts, hostsAt], [subnets, subnetsAt]] = await Promise.all([get(base + "/vswitches"), list("hosts"), list("subnets")]);
    per[v.name] = { vswitches, subnets: subnets || [], hosts, hostsAt, subnetsAt };
  }));
  state.perVPC = per;
  render();
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

function matches(h) {
  const f = state.filter;
  return !f || h.name.includes(f) || String(h.ip).includes(f) || String(h.mac).includes(f);
}

function render() {
  const up = portIndex();
  const root = $("#vpcs");
  const html = [];
  for (const v of state.vpcs) {
    const d = state.perVPC[v.name] || { vswitches: [], subnets: [], hosts: null };
    const hosts = d.hosts || [];
    html.push(`<details class="vpc" data-vpc="${esc(v.name)}" ${state.closed.has(v.name) ? "" : "open"}>
      <summary>VPC ${esc(v.name)} <span class="meta">id ${v.id}${v.cidr ? " · " + esc(v.cidr) : ""} · ${d.vswitches.length} vSwitches · ${d.hosts ? hosts.length : "?"} hosts · ${d.subnets.length} route entries</span></summary><div class="body">`);
    for (const w of d.vswitches) {
      const all = hosts.filter((h) => h.vswitch === w.name && matches(h));
      const key = v.name + "/" + w.name;
      const pages = Math.max(1, Math.ceil(all.length / PAGE));
      const page = Math.min(state.pages[key] || 0, pages - 1);
      const shown = all.slice(page * PAGE, (page + 1) * PAGE);
      html.push(`<div class="vswitch" data-vswitch="${esc(w.name)}"><h3>vSwitch ${esc(w.name)} <span class="meta">${esc(w.cidr)} · gateway ${esc(w.gateway)} · ${all.length} hosts</span>
        <span class="counter" data-counter="${esc(key)}"></span></h3>
        <table class="hosts"><thead><tr><th>host</th><th>IP</th><th>MAC</th><th>port</th><th>chassis</th><th>state</th></tr></thead><tbody>`);
      for (const h of shown) {
        const s = up(h);
        const port = h.dpid ? `${esc(h.dpid)}:${h.ofport}` : `${esc(h.bridge || "")}${h.bridge ? "/" : ""}${esc(h.interface)}`;
        html.push(`<tr class="host" data-host="${esc(h.name)}"><td>${esc(h.name)}</td><td>${esc(h.ip)}</td><td>${esc(h.mac)}</td><td>${port}</td><td>${esc(h.chassis || "-")}</td><td class="${s}">${s}</td></tr>`);
      }
      html.push(`</tbody></table>`);
      if (pages > 1) {
        html.push(`<div class="pager">page ${page + 1} of ${pages}
          <button data-page="${esc(key)}" data-to="${page - 1}" ${page === 0 ? "disabled" : ""}>‹ prev</button>
          <button data-page="${esc(key)}" data-to="${page + 1}" ${page + 1 >= pages ? "disabled" : ""}>next ›</button></div>`);
      }
      html.push(`</div>`);
    }
    const routes = d.subnets.filter((r) => !state.filter || r.name.includes(state.filter) || r.host.includes(state.filter));
    const rkey = v.name + "/#routes", rpages = Math.max(1, Math.ceil(routes.length / PAGE));
    const rpage = Math.min(state.pages[rkey] || 0, rpages - 1);
    html.push(`<h3>Route entries</h3><table class="routes"><thead><tr><th>name</th><th>destination</th><th>next hop</th></tr></thead><tbody>`);
    for (const r of routes.slice(rpage * PAGE, (rpage + 1) * PAGE)) {
      html.push(`<tr class="route" data-route="${esc(r.name)}"><td>${esc(r.name)}</td><td>${esc(r.cidr)}</td><td>host ${esc(r.host)}</td></tr>`);
    }
    html.push(`</tbody></table>`);
    if (rpages > 1) {
      html.push(`<div class="pager">page ${rpage + 1} of ${rpages}
        <button data-page="${esc(rkey)}" data-to="${rpage - 1}" ${rpage === 0 ? "disabled" : ""}>‹ prev</button>
        <button data-page="${esc(rkey)}" data-to="${rpage + 1}" ${rpage + 1 >= rpages ? "disabled" : ""}>next ›</button></div>`);
    }
    html.push(`</div></details>`);
  }
  root.innerHTML = html.join("") || "<p>No VPC yet.</p>";
  for (const el of root.querySelectorAll("details.vpc")) {
    el.addEventListener("toggle", () => {
      const name = el.dataset.vpc;
      if (el.open) { state.closed.delete(name); loadTopology().catch(showError); } else state.closed.add(name);
    });
  }
  for (const b of root.querySelectorAll("button[data-page]")) {
    b.addEventListener("click", () => { state.pages[b.dataset.page] = Number(b.dataset.to); render(); });
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
  fillHosts();
  renderCounters();
  $("#status").textContent = `${state.vpcs.length} VPCs · ${state.switches.length} switches · updated ${new Date().toLocaleTimeString()}`;
}

function fillHosts() {
  const d = state.perVPC[$("#t-vpc").value];
  $("#t-hosts").innerHTML = ((d && d.hosts) || []).slice(0, 500).map((h) => `<option value="${esc(h.name)}">${esc(h.ip)}</option>`).join("");
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

$("#trace-form").addEventListener("submit", runTrace);
$("#t-vpc").addEventListener("change", fillHosts);
$("#filter").addEventListener("input", (e) => { state.filter = e.target.value.trim(); state.pages = {}; render(); });
$("#token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  state.token = $("#token").value.trim();
  sessionStorage.setItem("vpcflow-token", state.token);
  $("#token-box").classList.add("hidden");
  loadTopology().catch(showError);
});
every(TOPOLOGY_EVERY, loadTopology);
every(COUNTERS_EVERY, loadCounters);
