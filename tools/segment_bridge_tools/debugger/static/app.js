// segment-bridge local debugger: renders /debugger/api/feed, live through server-sent events.
// Plain DOM, no framework, no build step. Every value from the feed goes in as text (textContent),
// never as HTML: webhook bodies are whatever a sender posted.
"use strict";

const API = "/debugger/api";
const POLL_MS = 2000; // when the event stream is down, poll instead
const state = {
  feed: null,
  paused: false,
  tab: "webhooks",
  open: new Set(), // "webhooks:12", "requests:3", ...
  details: new Map(), // same keys -> last fetched detail
  pendingOpen: null, // {source, after}: open the next webhook of this source (after "Send test event")
  pollTimer: null,
  refreshTimer: null,
};

// -- helpers ---------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
const time = (at) => new Date(at * 1000).toLocaleTimeString([], { hour12: false });
const bytes = (n) => (n < 1024 ? `${n} B` : `${(n / 1024).toFixed(1)} KB`);
const statusClass = (s) => `status s${String(s || 0)[0]}`;
const json = (value) => JSON.stringify(value, null, 2);
const badge = (cls, text, title) => el("span", { class: `badge ${cls}`, title }, text);

async function getJson(url, options) {
  const response = await fetch(url, Object.assign({ cache: "no-store" }, options || {}));
  const body = await response.json();
  return { status: response.status, body };
}

// -- data ------------------------------------------------------------------------------------
async function refresh() {
  const { body } = await getJson(`${API}/feed`);
  state.feed = body;
  render();
  for (const key of state.open) loadDetail(key);
}

function scheduleRefresh() {
  if (state.paused || state.refreshTimer) return;
  state.refreshTimer = setTimeout(() => {
    state.refreshTimer = null;
    refresh().catch(() => {});
  }, 80);
}

async function loadDetail(key) {
  const [kind, id] = key.split(":");
  const { status, body } = await getJson(`${API}/${kind}/${id}`);
  if (status !== 200) return;
  const previous = state.details.get(key);
  state.details.set(key, body);
  const slot = document.querySelector(`[data-key="${key}"] .detail`);
  if (slot && (!slot.childElementCount || JSON.stringify(previous) !== JSON.stringify(body))) {
    slot.replaceChildren(...renderDetail(kind, body));
  }
}

function connect() {
  if (!window.EventSource) return startPolling();
  const stream = new EventSource(`${API}/stream`);
  stream.addEventListener("update", () => scheduleRefresh());
  stream.addEventListener("open", () => stopPolling());
  stream.addEventListener("error", () => startPolling()); // EventSource reconnects by itself meanwhile
}
function startPolling() {
  if (!state.pollTimer) state.pollTimer = setInterval(scheduleRefresh, POLL_MS);
}
function stopPolling() {
  if (state.pollTimer) clearInterval(state.pollTimer);
  state.pollTimer = null;
}

// -- filters ---------------------------------------------------------------------------------
function filters() {
  return {
    tenant: document.getElementById("filter-tenant").value,
    source: document.getElementById("filter-source").value,
    event: document.getElementById("filter-event").value.trim().toLowerCase(),
  };
}
function matchesEvent(names, wanted) {
  return !wanted || (names || []).some((name) => name.toLowerCase().includes(wanted));
}
function visible(kind, entry, f) {
  if (kind === "webhooks") {
    return (!f.tenant || entry.tenant === f.tenant) && (!f.source || entry.source === f.source) && matchesEvent(entry.events, f.event);
  }
  if (kind === "requests") {
    return (!f.tenant || entry.tenants.includes(f.tenant)) && !f.source && !f.event;
  }
  return (!f.tenant || entry.tenant === f.tenant) && (!f.source || entry.source === f.source) && matchesEvent(entry.events, f.event);
}
function fillOptions(select, values) {
  const current = select.value;
  const wanted = ["", ...values];
  const have = Array.from(select.options).map((o) => o.value);
  if (have.join("\n") === wanted.join("\n")) return;
  select.replaceChildren(...wanted.map((v) => el("option", { value: v }, v || "all")));
  select.value = wanted.includes(current) ? current : "";
}

// -- rendering -------------------------------------------------------------------------------
function render() {
  const feed = state.feed;
  if (!feed) return;
  const stack = feed.stack || {};
  document.getElementById("stack-info").textContent =
    `tenant ${stack.tenant} · webhooks at ${stack.webhookUrl} · delivering to ${stack.target}`;
  const send = document.getElementById("send-source");
  if (!send.options.length) {
    for (const source of feed.sources) {
      send.append(el("option", { value: source.name, disabled: !source.available, title: source.why }, source.name));
    }
    const first = feed.sources.find((s) => s.available);
    if (first) send.value = first.name;
  }
  const tenants = new Set([stack.tenant].filter(Boolean));
  const sources = new Set();
  for (const w of feed.webhooks) {
    if (w.tenant) tenants.add(w.tenant);
    if (w.source) sources.add(w.source);
  }
  for (const d of feed.deadLetters) {
    if (d.tenant) tenants.add(d.tenant);
    if (d.source) sources.add(d.source);
  }
  fillOptions(document.getElementById("filter-tenant"), [...tenants].sort());
  fillOptions(document.getElementById("filter-source"), [...sources].sort());

  if (state.pendingOpen) {
    const hit = feed.webhooks.find((w) => w.id > state.pendingOpen.after && w.source === state.pendingOpen.source);
    if (hit) {
      state.open.add(`webhooks:${hit.id}`);
      state.pendingOpen = null;
    }
  }
  const f = filters();
  renderList("webhooks", feed.webhooks, webhookRow, f);
  renderList("requests", feed.requests, requestRow, f);
  renderList("dead-letters", feed.deadLetters, deadLetterRow, f);
}

function renderList(kind, entries, row, f) {
  // Keyed: an entry whose summary did not change keeps its element (and an open detail its state).
  const list = document.getElementById(kind);
  const existing = new Map(Array.from(list.children).map((li) => [li.dataset.key, li]));
  const items = entries.map((entry) => {
    const key = `${kind}:${entry.id}`;
    const open = state.open.has(key);
    const signature = JSON.stringify(entry);
    let item = existing.get(key);
    if (!item) {
      item = el("li", { "data-key": key, "data-id": entry.id }, el("div", { class: "row", role: "button", tabindex: "0", onclick: () => toggle(key) }), el("div", { class: "detail", hidden: true }));
    }
    if (item.dataset.signature !== signature) {
      item.dataset.signature = signature;
      item.querySelector(".row").replaceChildren(...row(entry));
    }
    item.className = `entry ${kind}${visible(kind, entry, f) ? "" : " hidden"}`;
    item.querySelector(".row").setAttribute("aria-expanded", String(open));
    const detail = item.querySelector(".detail");
    detail.hidden = !open;
    if (open && !detail.childElementCount && state.details.has(key)) detail.append(...renderDetail(kind, state.details.get(key)));
    return item;
  });
  items.forEach((item, position) => {
    if (list.children[position] !== item) list.insertBefore(item, list.children[position] || null);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
  document.getElementById(`count-${kind}`).textContent = String(entries.length);
  list.parentElement.querySelector(".empty").hidden = entries.length > 0;
}

function toggle(key) {
  if (state.open.has(key)) state.open.delete(key);
  else {
    state.open.add(key);
    loadDetail(key).catch(() => {});
  }
  render();
}

function webhookRow(w) {
  const summary =
    w.kind === "destination"
      ? `Segment → bridge${w.applied !== null && w.applied !== undefined ? ` · applied ${w.applied}` : ""}`
      : `accepted ${w.accepted} · skipped ${w.skipped} · rejected ${w.rejected}`;
  const fixes = {};
  for (const f of w.findings) fixes[f.action] = (fixes[f.action] || 0) + 1;
  return [
    el("span", { class: "time" }, time(w.at)),
    el("span", { class: "route", title: w.path }, `${w.method} ${w.path}`),
    el("span", { class: statusClass(w.status) }, w.status),
    el("span", { class: "names" }, w.events.length ? w.events.join(", ") : "", el("span", { class: "muted" }, w.events.length ? ` · ${summary}` : summary), w.message ? el("div", { class: "muted" }, w.message) : null),
    el(
      "span",
      {},
      Object.entries(w.delivery).map(([s, n]) => badge(s.replace(/\s+/g, "-"), `${s} ${n}`)),
      w.segmentStatuses.map((s) => badge(s === 200 ? "delivered" : "failed", `Segment ${s}`)),
      Object.entries(fixes).map(([action, n]) => badge(action, `${action} ${n}`, "conformance findings")),
    ),
  ];
}

function requestRow(r) {
  return [
    el("span", { class: "time" }, time(r.at)),
    el("span", { class: "route" }, `POST ${r.path} `, el("span", { class: "tag" }, r.region || "region ?")),
    el("span", { class: statusClass(r.status) }, r.status || "—"),
    el("span", { class: "names" }, `${r.messages} messages · ${bytes(r.bytes)} (${bytes(r.wireBytes)} on the wire) · attempt ${r.attempt}` + (r.duplicates ? ` · ${r.duplicates} already delivered (Segment drops them by messageId)` : ""), r.error ? el("div", { class: "muted" }, r.error) : null),
    el("span", {}, r.tenants.map((t) => el("span", { class: "tag" }, t)), el("span", { class: "tag", title: "writeKey (last four characters)" }, `key ${r.writeKey || "none"}`)),
  ];
}

function deadLetterRow(d) {
  return [
    el("span", { class: "time" }, time(d.at)),
    el("span", { class: "route" }, el("span", { class: "tag" }, d.tenant || "?"), el("span", { class: "tag" }, d.source || "?")),
    el("span", { class: statusClass(d.status || 0) }, d.status || "—"),
    el("span", { class: "names" }, `${d.messages} message(s): ${d.reason}`),
    el("span", {}, badge(d.present ? "dead-lettered" : "left-dlq", d.present ? "in the DLQ" : "left the DLQ"), d.redrivable ? badge("queued", "redrivable") : badge("failed", "not redrivable")),
  ];
}

// -- details ---------------------------------------------------------------------------------
function renderDetail(kind, d) {
  const parts = kind === "webhooks" ? webhookDetail(d) : kind === "requests" ? requestDetail(d) : deadLetterDetail(d);
  return parts.flat(Infinity).filter(Boolean);
}

function findingLine(f) {
  return el(
    "div",
    { class: "finding" },
    badge(f.action, f.action),
    el("code", {}, f.code),
    ` ${f.message} `,
    f.fix ? el("span", { class: "fix" }, `Fix: ${f.fix}`) : null,
  );
}

function attemptsText(trace) {
  if (!trace) return "";
  const attempts = trace.attempts.map((a, i) => `request #${a.request} → ${a.status} (attempt ${i + 1})`);
  return [trace.state, ...attempts, trace.reason ? `reason: ${trace.reason}` : null].filter(Boolean).join(" · ");
}

function webhookDetail(w) {
  const parts = [];
  if (w.eventsDetail.length) {
    parts.push(el("h3", {}, "Events"));
    parts.push(
      el(
        "table",
        { class: "events" },
        el("thead", {}, el("tr", {}, ["#", "outcome", "event", "messageId", "at Segment", "conformance"].map((h) => el("th", {}, h)))),
        el(
          "tbody",
          {},
          w.eventsDetail.map((e) =>
            el(
              "tr",
              {},
              el("td", {}, e.index === null ? "" : e.index),
              el("td", {}, badge(e.outcome, e.outcome), e.reason ? el("div", { class: "muted" }, e.reason) : null),
              el("td", {}, e.trace && e.trace.event ? e.trace.event : ""),
              el("td", {}, el("code", {}, e.messageId || "")),
              el("td", { class: "at-segment" }, attemptsText(e.trace)),
              el("td", {}, e.findings.map(findingLine)),
            ),
          ),
        ),
      ),
    );
  } else if (w.findings.length) {
    parts.push(el("h3", {}, "Conformance"), w.findings.map(findingLine));
  }
  const received = w.eventsDetail.map((e) => e.trace && e.trace.message).filter(Boolean);
  if (received.length) {
    parts.push(el("h3", {}, "As Segment received it"));
    parts.push(received.map(messageCard));
  }
  if (w.requests.length) {
    parts.push(el("h3", {}, "/v1/batch requests that carried them"));
    parts.push(requestTable(w.requests));
  }
  if (w.deadLetters.length) {
    parts.push(el("h3", {}, "Dead letters"));
    parts.push(w.deadLetters.map((d) => el("div", { class: "finding" }, badge("dead-lettered", `DLQ #${d.id}`), ` ${d.messages} message(s): ${d.reason}`)));
  }
  parts.push(el("h3", {}, `Webhook as received (${bytes(w.body.bytes)}; secrets and signatures masked)`));
  parts.push(
    el("table", { class: "headers" }, el("tbody", {}, Object.entries(w.headers).map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))))),
  );
  parts.push(el("pre", { class: "raw-body" }, bodyText(w.body)));
  parts.push(el("h3", {}, `Bridge's answer: ${w.status} in ${w.durationMs} ms`));
  parts.push(el("pre", { class: "answer" }, typeof w.response === "string" ? w.response : json(w.response)));
  return parts;
}

function bodyText(body) {
  if (body.kind === "empty") return "(empty body)";
  if (body.kind === "json") return json(body.content);
  if (body.kind === "form") return body.content.map(([k, v]) => `${k} = ${v}`).join("\n");
  return body.content + (body.truncated ? "\n… (cut for display)" : "");
}

function requestTable(requests) {
  return el(
    "table",
    { class: "requests" },
    el("thead", {}, el("tr", {}, ["request", "status", "messages", "size", "region", "sentAt", "attempt", "writeKey"].map((h) => el("th", {}, h)))),
    el(
      "tbody",
      {},
      requests.map((r) =>
        el(
          "tr",
          {},
          el("td", {}, `#${r.id}`),
          el("td", { class: `request-status ${statusClass(r.status)}` }, r.status, r.error ? el("div", { class: "muted" }, r.error) : null),
          el("td", {}, r.messages),
          el("td", {}, `${bytes(r.bytes)} (${bytes(r.wireBytes)} gzip)`),
          el("td", {}, r.region || "?"),
          el("td", {}, r.sentAt || ""),
          el("td", {}, r.attempt),
          el("td", {}, r.writeKey || ""),
        ),
      ),
    ),
  );
}

function requestDetail(r) {
  return [el("h3", {}, "Request"), requestTable([r]), el("h3", {}, "Batch as Segment received it"), r.batch.map(messageCard)];
}

function deadLetterDetail(d) {
  return [
    el("h3", {}, "Why"),
    el("p", {}, d.reason),
    el("p", { class: "muted" }, d.redrivable ? `segment-bridge dlq redrive --tenant ${d.tenant} sends it back to the main queue.` : "Not a queue message: a redrive would only bring it back."),
    el("h3", {}, `Messages (${d.messages})`),
    d.batch.map(messageCard),
  ];
}

function messageCard(m) {
  const pretty = prettyView(m);
  const raw = el("pre", { class: "raw-message", hidden: true }, json(m));
  const prettyButton = el("button", { type: "button", "aria-pressed": "true" }, "Pretty");
  const rawButton = el("button", { type: "button", "aria-pressed": "false" }, "Raw");
  const show = (wantRaw) => {
    raw.hidden = !wantRaw;
    pretty.hidden = wantRaw;
    rawButton.setAttribute("aria-pressed", String(wantRaw));
    prettyButton.setAttribute("aria-pressed", String(!wantRaw));
  };
  prettyButton.addEventListener("click", () => show(false));
  rawButton.addEventListener("click", () => show(true));
  return el("div", { class: "message-card" }, el("span", { class: "views" }, prettyButton, rawButton), pretty, raw);
}

function prettyView(m) {
  const call = { track: m.event, page: m.name, screen: m.name, group: m.groupId, alias: m.previousId }[m.type];
  const rows = [
    ["userId", m.userId],
    ["anonymousId", m.anonymousId],
    ["timestamp", m.timestamp],
    ["messageId", m.messageId],
  ];
  const detail = m.properties || m.traits || {};
  for (const [k, v] of Object.entries(detail)) rows.push([`${m.properties ? "properties" : "traits"}.${k}`, typeof v === "string" ? v : JSON.stringify(v)]);
  const integration = (m.context || {}).integration;
  if (integration) rows.push(["context.integration", `${integration.name} ${integration.version}`]);
  if ((m.context || {}).conformance) rows.push(["context.conformance", JSON.stringify(m.context.conformance)]);
  return el(
    "div",
    { class: "pretty" },
    el("span", { class: "call" }, m.type), call ? el("span", { class: "event-name" }, ` ${JSON.stringify(call)}`) : null,
    el("dl", {}, rows.filter(([, v]) => v !== undefined && v !== null).map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)])),
  );
}

// -- controls --------------------------------------------------------------------------------
function setup() {
  document.querySelectorAll(".tabs button").forEach((button) =>
    button.addEventListener("click", () => {
      state.tab = button.dataset.tab;
      document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
      document.querySelectorAll(".tab").forEach((t) => (t.hidden = t.id !== `tab-${state.tab}`));
    }),
  );
  for (const id of ["filter-tenant", "filter-source", "filter-event"]) {
    document.getElementById(id).addEventListener("input", render);
    document.getElementById(id).addEventListener("change", render);
  }
  const live = document.getElementById("live-toggle");
  live.addEventListener("click", () => {
    state.paused = !state.paused;
    live.classList.toggle("paused", state.paused);
    live.setAttribute("aria-pressed", String(!state.paused));
    live.textContent = state.paused ? "❚❚ Paused" : "● Live";
    if (!state.paused) scheduleRefresh();
  });
  document.getElementById("send-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const source = document.getElementById("send-source").value;
    const result = document.getElementById("send-result");
    result.textContent = `sending the ${source} sample…`;
    const newest = state.feed && state.feed.webhooks.length ? state.feed.webhooks[0].id : 0;
    state.pendingOpen = { source, after: newest };
    try {
      const { status, body } = await getJson(`${API}/send`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ source }),
      });
      if (status !== 200) {
        result.textContent = body.message;
        state.pendingOpen = null;
        return;
      }
      const answer = body.response || {};
      result.textContent = `${source} → ${body.status}` + (answer.accepted !== undefined ? ` · accepted ${answer.accepted}` : "") + (answer.message ? ` · ${answer.message}` : "");
      document.querySelector('.tabs button[data-tab="webhooks"]').click();
      scheduleRefresh();
    } catch (error) {
      result.textContent = `could not send: ${error}`;
      state.pendingOpen = null;
    }
  });
  refresh().catch(() => startPolling());
  connect();
}

document.addEventListener("DOMContentLoaded", setup);
