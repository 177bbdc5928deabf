// The dashboard page: server info, proxies by type, a 7-day traffic chart for the selected proxy, clients with
// their identity, and "prune offline". Refreshes every 10 s while visible.
import "./style.css";
import * as api from "./api";
import { layoutChart, MARGIN } from "./chart";
import { h, s } from "./dom";
import { formatBytes, formatTime, relative } from "./format";
import { clientRows, groupByType, proxyRows, serverSummary, trafficSeries } from "./model";
import type { ClientRow, ProxyGroup, ProxyRow, ServerSummary, TrafficSeries } from "./model";

const REFRESH_MS = 10_000;

interface State {
  server: ServerSummary | null;
  groups: ProxyGroup[];
  clients: ClientRow[];
  selected: string | null;
  traffic: TrafficSeries | null;
  error: string;
  notice: string;
}

const state: State = { server: null, groups: [], clients: [], selected: null, traffic: null, error: "", notice: "" };
const root = document.getElementById("app") as HTMLElement;

function bytesCell(label: string, n: number): HTMLTableCellElement {
  return h("td", { "data-label": label, "data-bytes": String(n), class: "num" }, formatBytes(n));
}

function badge(online: boolean): HTMLElement {
  return h("span", { class: `badge ${online ? "on" : "off"}` }, online ? "online" : "offline");
}

function serverSection(sv: ServerSummary): HTMLElement {
  const stat = (label: string, value: string, id: string, raw?: number) =>
    h("div", { class: "stat" }, h("span", { class: "label" }, label), h("span", { class: "value", id, ...(raw === undefined ? {} : { "data-bytes": String(raw) }) }, value));
  return h(
    "section",
    { id: "server" },
    h("h2", {}, "Server"),
    h(
      "div",
      { class: "stats" },
      stat("Version", sv.version, "version"),
      stat("Clients online", String(sv.clients), "client-count"),
      stat("Proxies", String(sv.proxies), "proxy-count"),
      stat("Connections", String(sv.curConns), "conn-count"),
      stat("Traffic in", formatBytes(sv.totalIn), "total-in", sv.totalIn),
      stat("Traffic out", formatBytes(sv.totalOut), "total-out", sv.totalOut),
    ),
    h("dl", { class: "facts" }, ...sv.facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
  );
}

function proxyRow(p: ProxyRow): HTMLTableRowElement {
  const tr = h(
    "tr",
    { "data-proxy": p.name, class: p.name === state.selected ? "selected" : "", tabindex: "0", title: "Show this proxy's traffic" },
    h("td", { "data-label": "Name", class: "name" }, p.name),
    h("td", { "data-label": "Status" }, badge(p.online)),
    h("td", { "data-label": "Public" }, p.endpoint || "–"),
    h("td", { "data-label": "Connections", class: "num" }, String(p.curConns)),
    bytesCell("Today in", p.todayIn),
    bytesCell("Today out", p.todayOut),
    h("td", { "data-label": p.online ? "Started" : "Closed" }, formatTime(p.online ? p.lastStartAt : p.lastCloseAt)),
  );
  const pick = () => void select(p.name);
  tr.addEventListener("click", pick);
  tr.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") pick();
  });
  return tr;
}

function proxiesSection(groups: ProxyGroup[]): HTMLElement {
  const body =
    groups.length === 0
      ? [h("p", { class: "empty" }, "No proxies.")]
      : groups.map((g) =>
          h(
            "div",
            { class: "group", "data-type": g.type },
            h("h3", {}, `${g.type.toUpperCase()} `, h("small", {}, `${g.online} online of ${g.proxies.length}`)),
            h(
              "table",
              {},
              h(
                "thead",
                {},
                h("tr", {}, ...["Name", "Status", "Public", "Connections", "Today in", "Today out", "Since"].map((t) => h("th", {}, t))),
              ),
              h("tbody", {}, ...g.proxies.map(proxyRow)),
            ),
          ),
        );
  return h("section", { id: "proxies" }, h("h2", {}, "Proxies"), ...body);
}

/** Laid out at the width it is shown at, so its text stays at its CSS size from phone to desktop. */
function chart(t: TrafficSeries): SVGElement {
  const width = Math.round(Math.min(1060, Math.max(280, root.clientWidth - 60)));
  const L = layoutChart(t, width, width < 500 ? 200 : 240);
  return s(
    "svg",
    { viewBox: `0 0 ${L.width} ${L.height}`, role: "img", "aria-label": `Traffic of ${t.name} over 7 days`, class: "chart" },
    ...L.ticks.map((k) =>
      s("g", { class: "tick" }, s("line", { x1: MARGIN.left, x2: L.width - MARGIN.right, y1: k.y, y2: k.y }), s("text", { x: MARGIN.left - 6, y: k.y + 4, "text-anchor": "end" }, k.label)),
    ),
    ...L.bars.map((b) => s("rect", { x: b.x, y: b.y, width: b.width, height: b.height, class: `bar ${b.kind}` }, s("title", {}, b.label))),
    ...L.days.map((d) => s("text", { x: d.x, y: L.height - 6, "text-anchor": "middle", class: "day" }, d.label)),
  );
}

function trafficSection(): HTMLElement | null {
  if (!state.selected) return null;
  const t = state.traffic;
  return h(
    "section",
    { id: "traffic", "data-proxy": state.selected },
    h("h2", {}, "Traffic of ", h("span", { class: "name" }, state.selected), h("small", {}, " · last 7 days")),
    t === null
      ? h("p", { class: "empty" }, "Loading…")
      : h(
          "div",
          {},
          h(
            "p",
            { class: "legend" },
            h("span", { class: "key in" }),
            "In ",
            h("strong", { id: "traffic-in", "data-bytes": String(t.totalIn) }, formatBytes(t.totalIn)),
            h("span", { class: "key out" }),
            "Out ",
            h("strong", { id: "traffic-out", "data-bytes": String(t.totalOut) }, formatBytes(t.totalOut)),
          ),
          chart(t),
        ),
  );
}

function identity(c: ClientRow, nowSecs: number): Node {
  if (!c.subject) return document.createTextNode(c.user ? `token · user ${c.user}` : "token");
  const exp = c.tokenExpiresAt === null ? "" : ` · token ${c.tokenExpiresAt > nowSecs ? "expires" : "expired"} ${relative(c.tokenExpiresAt, nowSecs)}`;
  return h(
    "span",
    {},
    h("strong", {}, c.subject),
    c.oidcClientID ? ` via ${c.oidcClientID}` : "",
    exp,
    c.policyRule ? ` · rule ${c.policyRule}` : "",
  );
}

function clientsSection(list: ClientRow[]): HTMLElement {
  const now = Math.floor(Date.now() / 1000);
  return h(
    "section",
    { id: "clients" },
    h("h2", {}, "Clients"),
    list.length === 0
      ? h("p", { class: "empty" }, "No clients.")
      : h(
          "table",
          {},
          h("thead", {}, h("tr", {}, ...["Host", "Status", "Identity", "Address", "Client ID", "Version", "Last login"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            ...list.map((c) =>
              h(
                "tr",
                { "data-client": c.key },
                h("td", { "data-label": "Host", class: "name" }, c.hostname || "–"),
                h("td", { "data-label": "Status" }, badge(c.online)),
                h("td", { "data-label": "Identity" }, identity(c, now)),
                h("td", { "data-label": "Address" }, c.address || "–"),
                h("td", { "data-label": "Client ID" }, h("span", { class: "mono" }, c.clientID || "–")),
                h("td", { "data-label": "Version" }, [c.version, c.wireProtocol].filter(Boolean).join(" · ") || "–"),
                h("td", { "data-label": "Last login" }, formatTime(c.lastConnectedAt)),
              ),
            ),
          ),
        ),
  );
}

function header(): HTMLElement {
  const refresh = h("button", { type: "button" }, "Refresh");
  refresh.addEventListener("click", () => void load());
  const prune = h("button", { type: "button", id: "prune", class: "danger" }, "Prune offline");
  prune.addEventListener("click", () => void pruneOffline());
  return h(
    "header",
    {},
    h("h1", {}, "Portway"),
    h("div", { class: "actions" }, refresh, prune),
    state.error ? h("p", { class: "error", role: "alert" }, state.error) : null,
    state.notice ? h("p", { class: "notice", role: "status" }, state.notice) : null,
  );
}

function render(): void {
  root.replaceChildren(
    header(),
    h(
      "main",
      {},
      state.server ? serverSection(state.server) : h("p", { class: "empty" }, state.error ? "" : "Loading…"),
      proxiesSection(state.groups),
      trafficSection(),
      clientsSection(state.clients),
    ),
  );
  root.dataset.loaded = state.server ? "true" : "false";
}

async function select(name: string): Promise<void> {
  if (state.selected !== name) {
    state.selected = name;
    state.traffic = null;
    render();
  }
  try {
    const t = trafficSeries(await api.traffic(name));
    if (state.selected === name) state.traffic = t;
  } catch (e) {
    state.error = e instanceof Error ? e.message : String(e);
  }
  render();
}

async function load(): Promise<void> {
  try {
    const [info, proxies, clients, ids] = await Promise.all([api.serverInfo(), api.proxies(), api.clients(), api.portwayClients()]);
    state.server = serverSummary(info);
    state.groups = groupByType(proxyRows(proxies));
    state.clients = clientRows(clients, ids);
    state.error = "";
    const all = state.groups.flatMap((g) => g.proxies);
    if (!all.some((p) => p.name === state.selected)) state.selected = (all.find((p) => p.online) ?? all[0])?.name ?? null;
  } catch (e) {
    state.error = e instanceof Error ? e.message : String(e);
  }
  render();
  if (state.selected) await select(state.selected);
}

async function pruneOffline(): Promise<void> {
  if (!window.confirm("Remove every offline proxy from the statistics?")) return;
  try {
    const n = await api.pruneOffline();
    state.notice = `Removed ${n} offline ${n === 1 ? "proxy" : "proxies"}.`;
  } catch (e) {
    state.error = e instanceof Error ? e.message : String(e);
  }
  await load();
}

void load();
let resizing: number | undefined;
window.addEventListener("resize", () => {
  window.clearTimeout(resizing);
  resizing = window.setTimeout(render, 150);
});
setInterval(() => {
  if (document.visibilityState === "visible") void load();
}, REFRESH_MS);
