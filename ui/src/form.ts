// The editable form model (raw strings as typed), its validation, and the conversion to/from `Profile`.
// Pure: no DOM, no IPC. Nothing is sent while `validate` returns any error.
// `tr`, not `t`: `t` is the name of the type-fields local below.
import { t as tr } from "./i18n";
import type { AuthMethod, Profile, ProxyType, Transport } from "./types";
import { fromVisitors, toVisitors, validateVisitors, type VisitorForm } from "./visitors";

export interface ProxyForm {
  /** Stable identity of a row while its name is being edited (never sent). */
  key: number;
  name: string;
  type: ProxyType;
  localIp: string;
  localPort: string;
  remotePort: string;
  enabled: boolean;
  /** Comma- or space-separated, as typed. */
  customDomains: string;
  subdomain: string;
  /** Comma- or space-separated path prefixes, as typed. */
  locations: string;
  httpUser: string;
  /** Typed in this session only (a stored one is never read back); sent to the keychain on Save. */
  httpPassword: string;
  /** A password for this proxy is in the keychain. */
  hasHttpPassword: boolean;
  hostHeaderRewrite: string;
  multiplexer: string;
  /** stcp/sudp/xtcp: comma- or space-separated user names, as typed. */
  allowUsers: string;
  /** stcp/sudp/xtcp: typed in this session only; sent to the keychain on Save. */
  secretKey: string;
  /** A secretKey for this proxy is in the keychain. */
  hasSecretKey: boolean;
  /** The stored name (empty for a new row): a rename moves the keychain entries from it. */
  storedName: string;
}

/** Fields a type shows: the rest are neither validated nor sent. */
export function typeFields(t: ProxyType): {
  remotePort: boolean;
  domains: boolean;
  locations: boolean;
  basicAuth: boolean;
  hostHeaderRewrite: boolean;
  multiplexer: boolean;
  secret: boolean;
} {
  const vhost = t === "http" || t === "https" || t === "tcpmux";
  return {
    secret: t === "stcp" || t === "sudp" || t === "xtcp",
    remotePort: t === "tcp" || t === "udp",
    domains: vhost,
    locations: t === "http",
    basicAuth: t === "http" || t === "tcpmux",
    hostHeaderRewrite: t === "http",
    multiplexer: t === "tcpmux",
  };
}

export interface ProfileForm {
  addr: string;
  port: string;
  protocol: Transport;
  tls: boolean;
  user: string;
  tcpMux: boolean;
  method: AuthMethod;
  tokenEndpointUrl: string;
  clientId: string;
  audience: string;
  scope: string;
  proxies: ProxyForm[];
  /** "Connect to a private service". */
  visitors: VisitorForm[];
  connectOnLaunch: boolean;
  startMinimized: boolean;
  launchAtLogin: boolean;
}

/** Field key → message. Proxy fields are keyed `proxy.<key>.<field>`. */
export type Errors = Record<string, string>;

export type ProxyFieldName =
  | "name"
  | "localIp"
  | "localPort"
  | "remotePort"
  | "customDomains"
  | "subdomain"
  | "locations"
  | "httpUser"
  | "httpPassword"
  | "hostHeaderRewrite"
  | "allowUsers"
  | "secretKey";

export const proxyField = (key: number, field: ProxyFieldName): string => `proxy.${key}.${field}`;

/** A comma/space separated list as typed, without empty items. */
export function splitList(raw: string): string[] {
  return raw
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter((x) => x !== "");
}

const LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

/** A DNS name as the server routes it: labels of letters, digits and '-', optionally "*." in front. */
export function domainError(d: string): string | null {
  if (d.includes("://")) return tr("form.domainScheme", { d });
  if (/[:/]/.test(d)) return tr("form.domainPortPath", { d });
  const name = d.startsWith("*.") ? d.slice(2) : d;
  if (name.length > 253 || !name.split(".").every((l) => LABEL_RE.test(l))) return tr("form.domainInvalid", { d });
  return null;
}

export const PROXY_NAME_RE = /^[A-Za-z0-9._-]+$/;

/** Port as typed: an integer 1–65535 written in plain digits. */
export function portError(raw: string, what = tr("form.port")): string | null {
  const s = raw.trim();
  if (s === "") return tr("form.portRequired", { what });
  if (!/^\d+$/.test(s)) return tr("form.portNotNumber", { what });
  const n = Number(s);
  if (n < 1 || n > 65535) return tr("form.portRange", { what });
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
  if (s === "") return tr("form.localIpRequired");
  if (isIPv4(s) || isIPv6(s)) return null;
  return tr("form.ipInvalid");
}

export function addrError(raw: string): string | null {
  const s = raw.trim();
  if (s === "") return tr("form.addrRequired");
  if (s.includes("://")) return tr("form.addrScheme");
  if (/\s/.test(s)) return tr("form.addrSpaces");
  return null;
}

export function tokenEndpointError(raw: string): string | null {
  const s = raw.trim();
  if (s === "") return tr("form.tokenEndpointRequired");
  let u: URL;
  try {
    u = new URL(s);
  } catch {
    return tr("form.urlInvalid");
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return tr("form.urlScheme");
  if (!u.hostname) return tr("form.urlNoHost");
  return null;
}

export function proxyNameError(name: string, taken: boolean): string | null {
  if (name === "") return tr("form.nameRequired");
  if (!PROXY_NAME_RE.test(name)) return tr("form.nameChars");
  if (taken) return tr("form.nameTaken");
  return null;
}

export function validate(f: ProfileForm): Errors {
  const e: Errors = {};
  const put = (k: string, m: string | null) => {
    if (m) e[k] = m;
  };
  put("addr", addrError(f.addr));
  put("port", portError(f.port));
  const user = f.user.trim();
  put("user", user !== "" && !PROXY_NAME_RE.test(user) ? tr("form.nameChars") : null);
  if (f.method === "oidc") {
    put("tokenEndpointUrl", tokenEndpointError(f.tokenEndpointUrl));
    put("clientId", f.clientId.trim() === "" ? tr("form.clientIdRequired") : null);
  }
  const seen = new Set<string>();
  for (const p of f.proxies) {
    const name = p.name.trim();
    put(proxyField(p.key, "name"), proxyNameError(name, seen.has(name)));
    seen.add(name);
    put(proxyField(p.key, "localIp"), ipError(p.localIp));
    put(proxyField(p.key, "localPort"), portError(p.localPort, tr("form.localPort")));
    const t = typeFields(p.type);
    if (t.remotePort) put(proxyField(p.key, "remotePort"), portError(p.remotePort, tr("form.remotePort")));
    if (t.domains) {
      const domains = splitList(p.customDomains);
      const sub = p.subdomain.trim();
      if (domains.length === 0 && sub === "") {
        put(proxyField(p.key, "customDomains"), tr("form.domainsRequired"));
      }
      for (const d of domains) {
        const m = domainError(d);
        if (m) {
          put(proxyField(p.key, "customDomains"), m);
          break;
        }
      }
      if (sub !== "" && !LABEL_RE.test(sub)) {
        put(proxyField(p.key, "subdomain"), tr("form.subdomainInvalid"));
      }
    }
    if (t.locations) {
      const bad = splitList(p.locations).find((l) => !l.startsWith("/"));
      if (bad !== undefined) put(proxyField(p.key, "locations"), tr("form.locationInvalid", { bad }));
    }
    if (t.basicAuth) {
      const user = p.httpUser.trim();
      const hasPw = p.httpPassword !== "" || p.hasHttpPassword;
      if (user !== "" && !hasPw) put(proxyField(p.key, "httpPassword"), tr("form.passwordRequired"));
      if (user === "" && p.httpPassword !== "") put(proxyField(p.key, "httpUser"), tr("form.userRequired"));
      if (/[:\s]/.test(user)) put(proxyField(p.key, "httpUser"), tr("form.userInvalid"));
    }
    if (t.secret) {
      if (p.secretKey === "" && !p.hasSecretKey) put(proxyField(p.key, "secretKey"), tr("secret.proxySecretRequired"));
      const bad = splitList(p.allowUsers).find((u) => u !== "*" && !PROXY_NAME_RE.test(u));
      if (bad !== undefined) put(proxyField(p.key, "allowUsers"), tr("secret.badUser", { user: bad }));
    }
    if (t.hostHeaderRewrite && p.hostHeaderRewrite.trim() !== "") {
      put(proxyField(p.key, "hostHeaderRewrite"), domainError(p.hostHeaderRewrite.trim()) === null || /^[\w.-]+:\d+$/.test(p.hostHeaderRewrite.trim()) ? null : tr("form.hostRewriteInvalid"));
    }
  }
  Object.assign(e, validateVisitors(f.visitors));
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
    user: p.server.user ?? "",
    tcpMux: p.server.tcpMux ?? true,
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
      remotePort: x.remotePort ? String(x.remotePort) : "",
      enabled: x.enabled,
      customDomains: (x.customDomains ?? []).join(", "),
      subdomain: x.subdomain ?? "",
      locations: (x.locations ?? []).join(", "),
      httpUser: x.httpUser ?? "",
      httpPassword: "",
      hasHttpPassword: x.hasHttpPassword ?? false,
      hostHeaderRewrite: x.hostHeaderRewrite ?? "",
      multiplexer: x.multiplexer || (x.type === "tcpmux" ? "httpconnect" : ""),
      allowUsers: (x.allowUsers ?? []).join(", "),
      secretKey: "",
      hasSecretKey: x.hasSecretKey ?? false,
      storedName: x.name,
    })),
    visitors: fromVisitors(p.visitors),
    connectOnLaunch: p.options.connectOnLaunch,
    startMinimized: p.options.startMinimized,
    launchAtLogin: p.options.launchAtLogin,
  };
}

/** Only meaningful for a form that `validate`s clean. `hasSecret` is read-only and passed through. */
export function toProfile(f: ProfileForm, hasSecret: boolean): Profile {
  return {
    server: { addr: f.addr.trim(), port: Number(f.port.trim()), protocol: f.protocol, tls: f.tls, user: f.user.trim(), tcpMux: f.tcpMux },
    auth: {
      method: f.method,
      tokenEndpointUrl: f.tokenEndpointUrl.trim(),
      clientId: f.clientId.trim(),
      audience: f.audience.trim(),
      scope: f.scope.trim(),
      hasSecret,
    },
    proxies: f.proxies.map((p) => {
      const t = typeFields(p.type);
      return {
        name: p.name.trim(),
        type: p.type,
        localIp: p.localIp.trim(),
        localPort: Number(p.localPort.trim()),
        remotePort: t.remotePort ? Number(p.remotePort.trim()) : 0,
        enabled: p.enabled,
        customDomains: t.domains ? splitList(p.customDomains) : [],
        subdomain: t.domains ? p.subdomain.trim() : "",
        locations: t.locations ? splitList(p.locations) : [],
        httpUser: t.basicAuth ? p.httpUser.trim() : "",
        hostHeaderRewrite: t.hostHeaderRewrite ? p.hostHeaderRewrite.trim() : "",
        multiplexer: t.multiplexer ? "httpconnect" : "",
        hasHttpPassword: p.hasHttpPassword,
        allowUsers: t.secret ? splitList(p.allowUsers) : [],
        hasSecretKey: p.hasSecretKey,
        ...(p.storedName !== "" && p.storedName !== p.name.trim() ? { renamedFrom: p.storedName } : {}),
      };
    }),
    visitors: toVisitors(f.visitors),
    options: { connectOnLaunch: f.connectOnLaunch, startMinimized: f.startMinimized, launchAtLogin: f.launchAtLogin },
  };
}

/** A new proxy row: a free name ("proxy-1", "proxy-2", …), TCP to localhost; ports left for the user. */
export function newProxy(existing: readonly ProxyForm[]): ProxyForm {
  const names = new Set(existing.map((p) => p.name.trim()));
  let i = 1;
  while (names.has(`proxy-${i}`)) i++;
  return {
    key: newKey(),
    name: `proxy-${i}`,
    type: "tcp",
    localIp: "127.0.0.1",
    localPort: "",
    remotePort: "",
    enabled: true,
    customDomains: "",
    subdomain: "",
    locations: "",
    httpUser: "",
    httpPassword: "",
    hasHttpPassword: false,
    hostHeaderRewrite: "",
    multiplexer: "",
    allowUsers: "",
    secretKey: "",
    hasSecretKey: false,
    storedName: "",
  };
}

/** Same content as far as the backend is concerned (ignores row keys and the read-only `has*` flags). */
export function sameProfile(a: Profile, b: Profile): boolean {
  const strip = (p: Profile) =>
    canonical({
      ...p,
      auth: { ...p.auth, hasSecret: false },
      proxies: p.proxies.map((x) => ({ ...x, hasHttpPassword: false, hasSecretKey: false, allowUsers: x.allowUsers ?? [], renamedFrom: null })),
      visitors: (p.visitors ?? []).map((v) => ({ ...v, hasSecretKey: false, renamedFrom: null })),
    });
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

/** The type-specific fields of a `ProxyDef` when a type does not use them. */
export const PROXY_EXTRAS = {
  customDomains: [] as string[],
  subdomain: "",
  locations: [] as string[],
  httpUser: "",
  hostHeaderRewrite: "",
  multiplexer: "",
  hasHttpPassword: false,
  allowUsers: [] as string[],
  hasSecretKey: false,
};
