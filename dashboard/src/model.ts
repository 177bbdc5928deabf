// Pure data shaping: API JSON in, what the page shows out. No DOM, no fetch, so unit tests cover it.
import type { ClientJson, PortwayClientJson, ServerInfoJson, TrafficJson, V2ProxyJson } from "./types";

/** frps's proxy types, in the order the page lists them (others follow, by name). */
export const PROXY_TYPES = ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];

export interface ProxyRow {
  name: string;
  type: string;
  online: boolean;
  /** Where the public side is: `:6000`, or the custom domains / subdomain of an HTTP proxy; "" if none. */
  endpoint: string;
  clientID: string;
  user: string;
  todayIn: number;
  todayOut: number;
  curConns: number;
  lastStartAt: number | null;
  lastCloseAt: number | null;
}

export interface ProxyGroup {
  type: string;
  proxies: ProxyRow[];
  online: number;
}

const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const time = (v: unknown): number | null => (typeof v === "number" && v > 0 ? v : null);

function endpoint(spec: V2ProxyJson["spec"]): string {
  if (!spec || typeof spec.type !== "string") return "";
  const inner = spec[spec.type];
  if (!inner || typeof inner !== "object") return "";
  const o = inner as Record<string, unknown>;
  if (typeof o.remotePort === "number" && o.remotePort > 0) return `:${o.remotePort}`;
  const parts: string[] = [];
  if (Array.isArray(o.customDomains)) parts.push(...o.customDomains.filter((d): d is string => typeof d === "string"));
  if (typeof o.subdomain === "string" && o.subdomain) parts.push(`${o.subdomain}.*`);
  return parts.join(", ");
}

/** One row per proxy of a `/api/v2/proxies` page; items without a name are dropped. */
export function proxyRows(items: V2ProxyJson[]): ProxyRow[] {
  return items
    .filter((p) => str(p.name) !== "")
    .map((p) => ({
      name: str(p.name),
      type: str(p.spec?.type) || "unknown",
      online: p.status?.phase === "online",
      endpoint: endpoint(p.spec),
      clientID: str(p.clientID),
      user: str(p.user),
      todayIn: num(p.status?.todayTrafficIn),
      todayOut: num(p.status?.todayTrafficOut),
      curConns: num(p.status?.curConns),
      lastStartAt: time(p.status?.lastStartAt),
      lastCloseAt: time(p.status?.lastCloseAt),
    }));
}

function typeRank(t: string): number {
  const i = PROXY_TYPES.indexOf(t);
  return i < 0 ? PROXY_TYPES.length : i;
}

/** Proxies grouped by type (frps's type order), online first within a group, then by name. */
export function groupByType(rows: ProxyRow[]): ProxyGroup[] {
  const groups = new Map<string, ProxyRow[]>();
  for (const r of rows) groups.set(r.type, [...(groups.get(r.type) ?? []), r]);
  return [...groups.entries()]
    .sort(([a], [b]) => typeRank(a) - typeRank(b) || a.localeCompare(b))
    .map(([type, proxies]) => ({
      type,
      proxies: [...proxies].sort((a, b) => Number(b.online) - Number(a.online) || a.name.localeCompare(b.name)),
      online: proxies.filter((p) => p.online).length,
    }));
}

export interface ClientRow {
  key: string;
  clientID: string;
  runID: string;
  user: string;
  hostname: string;
  address: string;
  version: string;
  wireProtocol: string;
  online: boolean;
  lastConnectedAt: number | null;
  /** The OIDC subject, "" with token auth. */
  subject: string;
  oidcClientID: string;
  tokenExpiresAt: number | null;
  policyRule: string;
}

/** `/api/clients` joined with `/api/portway/clients` by key (Portway's identity where the server has one). */
export function clientRows(clients: ClientJson[], portway: PortwayClientJson[]): ClientRow[] {
  const ids = new Map(portway.filter((p) => str(p.key) !== "").map((p) => [str(p.key), p]));
  return clients
    .map((c) => {
      const p = ids.get(str(c.key));
      return {
        key: str(c.key),
        clientID: str(c.clientID),
        runID: str(c.runID),
        user: str(c.user),
        hostname: str(c.hostname),
        address: str(c.clientIP),
        version: str(c.version),
        wireProtocol: str(c.wireProtocol),
        online: c.online === true,
        lastConnectedAt: time(c.lastConnectedAt),
        subject: str(p?.auth?.subject),
        oidcClientID: str(p?.auth?.oidcClientID),
        tokenExpiresAt: time(p?.auth?.tokenExpiresAt),
        policyRule: str(p?.policyRule),
      };
    })
    .sort((a, b) => Number(b.online) - Number(a.online) || a.hostname.localeCompare(b.hostname) || a.key.localeCompare(b.key));
}

export interface ServerSummary {
  version: string;
  /** Label and value, in display order; ports that are off (0) are left out. */
  facts: [string, string][];
  totalIn: number;
  totalOut: number;
  curConns: number;
  clients: number;
  proxies: number;
}

/** The server panel from `/api/serverinfo`. */
export function serverSummary(s: ServerInfoJson): ServerSummary {
  const facts: [string, string][] = [];
  const port = (label: string, v: unknown) => {
    if (num(v) > 0) facts.push([label, String(num(v))]);
  };
  port("Bind port", s.bindPort);
  port("HTTP port", s.vhostHTTPPort);
  port("HTTPS port", s.vhostHTTPSPort);
  port("tcpmux port", s.tcpmuxHTTPConnectPort);
  if (str(s.subdomainHost)) facts.push(["Subdomain host", str(s.subdomainHost)]);
  facts.push(["Max pool", String(num(s.maxPoolCount))]);
  facts.push(["Ports per client", num(s.maxPortsPerClient) > 0 ? String(num(s.maxPortsPerClient)) : "no limit"]);
  facts.push(["Heartbeat timeout", num(s.heartbeatTimeout) < 0 ? "off (tcpMux)" : `${num(s.heartbeatTimeout)} s`]);
  const counts = s.proxyTypeCount ?? {};
  return {
    version: str(s.version) || "unknown",
    facts,
    totalIn: num(s.totalTrafficIn),
    totalOut: num(s.totalTrafficOut),
    curConns: num(s.curConns),
    clients: num(s.clientCounts),
    proxies: Object.values(counts).reduce((a, b) => a + num(b), 0),
  };
}

export interface TrafficDay {
  /** "today", "1 d ago", … */
  label: string;
  in: number;
  out: number;
}

export interface TrafficSeries {
  name: string;
  /** Oldest first (the API lists today first). */
  days: TrafficDay[];
  totalIn: number;
  totalOut: number;
}

/** `/api/traffic/{name}` as a chart series: oldest day first, missing days as 0, always `days` long. */
export function trafficSeries(t: TrafficJson, days = 7): TrafficSeries {
  const at = (a: number[] | undefined, i: number) => num(a?.[i]);
  const out: TrafficDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    out.push({ label: i === 0 ? "today" : `${i} d ago`, in: at(t.trafficIn, i), out: at(t.trafficOut, i) });
  }
  return {
    name: str(t.name),
    days: out,
    totalIn: out.reduce((a, d) => a + d.in, 0),
    totalOut: out.reduce((a, d) => a + d.out, 0),
  };
}
