// The editable form model (raw strings as typed), its validation, and the conversion to/from `Profile`.
// Pure: no DOM, no IPC. Nothing is sent while `validate` returns any error.
import type { AuthMethod, Profile, ProxyType, Transport } from "./types";

export interface ProxyForm {
  /** Stable identity of a row while its name is being edited (never sent). */
  key: number;
  name: string;
  type: ProxyType;
  localIp: string;
  localPort: string;
  remotePort: string;
  enabled: boolean;
}

export interface ProfileForm {
  addr: string;
  port: string;
  protocol: Transport;
  tls: boolean;
  method: AuthMethod;
  tokenEndpointUrl: string;
  clientId: string;
  audience: string;
  scope: string;
  proxies: ProxyForm[];
  connectOnLaunch: boolean;
  startMinimized: boolean;
  launchAtLogin: boolean;
}

/** Field key → message. Proxy fields are keyed `proxy.<key>.<field>`. */
export type Errors = Record<string, string>;

export const proxyField = (key: number, field: "name" | "localIp" | "localPort" | "remotePort"): string =>
  `proxy.${key}.${field}`;

export const PROXY_NAME_RE = /^[A-Za-z0-9._-]+$/;

/** Port as typed: an integer 1–65535 written in plain digits. */
export function portError(raw: string, what = "Port"): string | null {
  const s = raw.trim();
  if (s === "") return `${what} is required`;
  if (!/^\d+$/.test(s)) return `${what} must be a whole number from 1 to 65535`;
  const n = Number(s);
  if (n < 1 || n > 65535) return `${what} must be from 1 to 65535`;
  return null;
}

export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(p));
}

export function isIPv6(s: string): boolean {
  if (!s.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  // The URL parser implements the full IPv6 grammar (::, embedded IPv4); only hex, ':' and '.' reach it.
  try {
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

export function ipError(raw: string): string | null {
  const s = raw.trim();
  if (s === "") return "Local IP is required";
  if (isIPv4(s) || isIPv6(s)) return null;
  return "Enter an IPv4 or IPv6 address, e.g. 127.0.0.1 or ::1";
}

export function addrError(raw: string): string | null {
  const s = raw.trim();
  if (s === "") return "Server address is required";
  if (s.includes("://")) return "Enter only the host name or IP, without http:// or wss://";
  if (/\s/.test(s)) return "The server address cannot contain spaces";
  return null;
}

export function tokenEndpointError(raw: string): string | null {
  const s = raw.trim();
  if (s === "") return "Token endpoint URL is required";
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return "Enter a full URL, e.g. https://auth.example.com/application/o/token/";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return "The token endpoint must be an http:// or https:// URL";
  if (!u.hostname) return "The token endpoint URL has no host";
  return null;
}

export function proxyNameError(name: string, taken: boolean): string | null {
  if (name === "") return "Name is required";
  if (!PROXY_NAME_RE.test(name)) return "Use only letters, digits, '.', '_' and '-'";
  if (taken) return "Another proxy already has this name";
  return null;
}

export function validate(f: ProfileForm): Errors {
  const e: Errors = {};
  const put = (k: string, m: string | null) => {
    if (m) e[k] = m;
  };
  put("addr", addrError(f.addr));
  put("port", portError(f.port));
  if (f.method === "oidc") {
    put("tokenEndpointUrl", tokenEndpointError(f.tokenEndpointUrl));
    put("clientId", f.clientId.trim() === "" ? "Client ID is required" : null);
  }
  const seen = new Set<string>();
  for (const p of f.proxies) {
    const name = p.name.trim();
    put(proxyField(p.key, "name"), proxyNameError(name, seen.has(name)));
    seen.add(name);
    put(proxyField(p.key, "localIp"), ipError(p.localIp));
    put(proxyField(p.key, "localPort"), portError(p.localPort, "Local port"));
    put(proxyField(p.key, "remotePort"), portError(p.remotePort, "Remote port"));
  }
  return e;
}

export const isValid = (e: Errors): boolean => Object.keys(e).length === 0;

let nextKey = 1;
export const newKey = (): number => nextKey++;

export function fromProfile(p: Profile): ProfileForm {
  return {
    addr: p.server.addr,
    port: String(p.server.port),
    protocol: p.server.protocol,
    tls: p.server.tls,
    method: p.auth.method,
    tokenEndpointUrl: p.auth.tokenEndpointUrl,
    clientId: p.auth.clientId,
    audience: p.auth.audience,
    scope: p.auth.scope,
    proxies: p.proxies.map((x) => ({
      key: newKey(),
      name: x.name,
      type: x.type,
      localIp: x.localIp,
      localPort: String(x.localPort),
      remotePort: String(x.remotePort),
      enabled: x.enabled,
    })),
    connectOnLaunch: p.options.connectOnLaunch,
    startMinimized: p.options.startMinimized,
    launchAtLogin: p.options.launchAtLogin,
  };
}

/** Only meaningful for a form that `validate`s clean. `hasSecret` is read-only and passed through. */
export function toProfile(f: ProfileForm, hasSecret: boolean): Profile {
  return {
    server: { addr: f.addr.trim(), port: Number(f.port.trim()), protocol: f.protocol, tls: f.tls },
    auth: {
      method: f.method,
      tokenEndpointUrl: f.tokenEndpointUrl.trim(),
      clientId: f.clientId.trim(),
      audience: f.audience.trim(),
      scope: f.scope.trim(),
      hasSecret,
    },
    proxies: f.proxies.map((p) => ({
      name: p.name.trim(),
      type: p.type,
      localIp: p.localIp.trim(),
      localPort: Number(p.localPort.trim()),
      remotePort: Number(p.remotePort.trim()),
      enabled: p.enabled,
    })),
    options: { connectOnLaunch: f.connectOnLaunch, startMinimized: f.startMinimized, launchAtLogin: f.launchAtLogin },
  };
}

/** A new proxy row: a free name ("proxy-1", "proxy-2", …), TCP to localhost; ports left for the user. */
export function newProxy(existing: readonly ProxyForm[]): ProxyForm {
  const names = new Set(existing.map((p) => p.name.trim()));
  let i = 1;
  while (names.has(`proxy-${i}`)) i++;
  return { key: newKey(), name: `proxy-${i}`, type: "tcp", localIp: "127.0.0.1", localPort: "", remotePort: "", enabled: true };
}

/** Same content as far as the backend is concerned (ignores row keys and `hasSecret`). */
export function sameProfile(a: Profile, b: Profile): boolean {
  const strip = (p: Profile) => canonical({ ...p, auth: { ...p.auth, hasSecret: false } });
  return strip(a) === strip(b);
}

/** JSON with object keys sorted, so key order from the backend does not matter. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}
