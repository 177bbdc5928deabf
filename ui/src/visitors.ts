// "Connect to a private service": the visitor rows' form model (raw strings as typed), validation, conversion to
// and from `VisitorDef`, and the state shown for each row. Pure: no DOM, no IPC.
import { language, t, type PlainKey } from "./i18n";
import type { ConnStatus, VisitorDef, VisitorStatus, VisitorType } from "./types";

export interface VisitorForm {
  /** Stable identity of a row while its name is edited (never sent). */
  key: number;
  /** The stored name (empty for a new row): a rename moves the keychain entry from it. */
  storedName: string;
  name: string;
  type: VisitorType;
  serverName: string;
  serverUser: string;
  bindAddr: string;
  bindPort: string;
  enabled: boolean;
  fallbackTo: string;
  /** Typed in this session only; sent to the keychain on Save. */
  secretKey: string;
  /** A secretKey for this row is in the keychain. */
  hasSecretKey: boolean;
}

export type VisitorFieldName = "name" | "serverName" | "serverUser" | "bindAddr" | "bindPort" | "secretKey" | "fallbackTo";

export const visitorField = (key: number, field: VisitorFieldName): string => `visitor.${key}.${field}`;

/** The names of the visitor rows' fields and of the secret proxies' own ones, for the "To save, fix: …" summary. */
const FIELD_NAMES: Record<string, PlainKey> = {
  name: "visitor.field.name",
  serverName: "visitor.field.serverName",
  serverUser: "visitor.field.serverUser",
  bindAddr: "visitor.field.bindAddr",
  bindPort: "visitor.field.bindPort",
  secretKey: "visitor.field.secretKey",
  fallbackTo: "visitor.field.fallbackTo",
  allowUsers: "visitor.field.allowUsers",
};

/** A visitor's or secret proxy's field name in the chosen language, or null for another field. */
export function secretFieldLabel(field: string): string | null {
  const key = FIELD_NAMES[field];
  return key ? t(key) : null;
}

/** The summary's name of a field key (`visitor.<key>.<field>`), or null when it is not a visitor field. */
export function visitorFieldName(key: string): string | null {
  const m = /^visitor\.\d+\.(\w+)$/.exec(key);
  return m ? (secretFieldLabel(m[1]!) ?? m[1]!) : null;
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

let nextKey = 100000;
const newKey = (): number => nextKey++;

export function fromVisitors(vs: readonly VisitorDef[] | undefined): VisitorForm[] {
  return (vs ?? []).map((v) => ({
    key: newKey(),
    storedName: v.name,
    name: v.name,
    type: v.type,
    serverName: v.serverName,
    serverUser: v.serverUser ?? "",
    bindAddr: v.bindAddr || "127.0.0.1",
    bindPort: String(v.bindPort),
    enabled: v.enabled,
    fallbackTo: v.fallbackTo ?? "",
    secretKey: "",
    hasSecretKey: v.hasSecretKey ?? false,
  }));
}

/** Only meaningful for rows that validate clean. */
export function toVisitors(rows: readonly VisitorForm[]): VisitorDef[] {
  return rows.map((r) => {
    const name = r.name.trim();
    const v: VisitorDef = {
      name,
      type: r.type,
      serverName: r.serverName.trim(),
      serverUser: r.serverUser.trim(),
      bindAddr: r.bindAddr.trim(),
      bindPort: Number(r.bindPort.trim()),
      enabled: r.enabled,
      fallbackTo: r.type === "xtcp" ? r.fallbackTo : "",
      hasSecretKey: r.hasSecretKey,
    };
    if (r.storedName !== "" && r.storedName !== name) v.renamedFrom = r.storedName;
    return v;
  });
}

/** A new row: a free name ("service-1", …), stcp on 127.0.0.1; the server name, key and port left to the person. */
export function newVisitor(existing: readonly VisitorForm[]): VisitorForm {
  const names = new Set(existing.map((v) => v.name.trim()));
  let i = 1;
  while (names.has(`service-${i}`)) i++;
  return {
    key: newKey(),
    storedName: "",
    name: `service-${i}`,
    type: "stcp",
    serverName: "",
    serverUser: "",
    bindAddr: "127.0.0.1",
    bindPort: "",
    enabled: true,
    fallbackTo: "",
    secretKey: "",
    hasSecretKey: false,
  };
}

function isIp(s: string): boolean {
  const v4 = s.split(".");
  if (v4.length === 4 && v4.every((p) => /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/.test(p))) return true;
  if (!s.includes(":") || !/^[0-9A-Fa-f:.]+$/.test(s)) return false;
  try {
    new URL(`http://[${s}]/`);
    return true;
  } catch {
    return false;
  }
}

/** Field key → message for every visitor row (the same rules as the backend's, with the fix in the words). */
export function validateVisitors(rows: readonly VisitorForm[], keychainAvailable = true): Record<string, string> {
  const e: Record<string, string> = {};
  const put = (k: string, m: string | null) => {
    if (m && !(k in e)) e[k] = m;
  };
  const seen = new Set<string>();
  const ports = new Map<string, string>();
  for (const r of rows) {
    const name = r.name.trim();
    const f = (x: VisitorFieldName) => visitorField(r.key, x);
    put(f("name"), name === "" ? t("visitor.nameRequired") : !NAME_RE.test(name) ? t("visitor.nameChars") : seen.has(name) ? t("visitor.nameTaken") : null);
    seen.add(name);
    const sn = r.serverName.trim();
    put(f("serverName"), sn === "" ? t("visitor.serverNameRequired") : !NAME_RE.test(sn) ? t("visitor.serverNameChars") : null);
    const su = r.serverUser.trim();
    if (su !== "" && !NAME_RE.test(su)) put(f("serverUser"), t("visitor.serverUserChars"));
    if (!isIp(r.bindAddr.trim())) put(f("bindAddr"), t("visitor.bindAddrBad"));
    const port = r.bindPort.trim();
    if (port === "-1") {
      if (r.type !== "stcp") put(f("bindPort"), t("visitor.bindPortNoneOnlyStcp"));
    } else if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      put(f("bindPort"), t("visitor.bindPortBad"));
    } else if (r.enabled) {
      const k = `${r.type === "sudp" ? "udp" : "tcp"} ${r.bindAddr.trim()}:${Number(port)}`;
      const other = ports.get(k);
      if (other !== undefined) put(f("bindPort"), t("visitor.bindPortTaken", { other }));
      else ports.set(k, name);
    }
    if (keychainAvailable && r.secretKey === "" && !r.hasSecretKey) put(f("secretKey"), t("visitor.secretRequired"));
    if (r.type === "xtcp" && r.fallbackTo !== "") {
      const target = rows.find((o) => o.name.trim() === r.fallbackTo);
      if (!target) put(f("fallbackTo"), t("visitor.fallbackMissing"));
      else if (target.type !== "stcp") put(f("fallbackTo"), t("visitor.fallbackNotStcp"));
      else if (r.enabled && !target.enabled) put(f("fallbackTo"), t("visitor.fallbackOff", { name: r.fallbackTo }));
    }
  }
  return e;
}

export type VisitorTone = "idle" | "busy" | "ok" | "bad" | "off";

export interface VisitorView {
  label: string;
  tone: VisitorTone;
  /** The full text (tooltip / screen readers), with the engine's reason in full. */
  detail: string;
  /** Stable, for tests and styling: off, disconnected, waiting, no-secret, no-port, ready, via-server,
   * peer-to-peer, fallback, failed. */
  state: string;
  /** What to open (`127.0.0.1:port`), when the local port is open. */
  localAddr: string | null;
  /** The engine's own words, shown under the label when the label does not hold them (another language). */
  original?: string | null;
}

/** The row's state from the engine's VisitorStatus and the connection. */
export function visitorView(
  row: Pick<VisitorForm, "enabled" | "type" | "bindPort" | "hasSecretKey">,
  st: VisitorStatus | undefined,
  conn: ConnStatus,
): VisitorView {
  const v = (state: string, label: string, tone: VisitorTone, detail: string, localAddr: string | null = null): VisitorView => ({
    state,
    label,
    tone,
    detail,
    localAddr,
  });
  // A failure: in English the engine's words are in the label; in another language a lead-in, the words under it.
  const failed = (why: string, detail: string, at: string | null): VisitorView =>
    language() === "en"
      ? v("failed", t("visitor.failed", { why }), "bad", detail, at)
      : { ...v("failed", t("status.visitorFailed"), "bad", detail, at), original: why };
  if (!row.enabled) return v("off", t("visitor.off"), "off", t("visitor.offDetail"));
  if (row.bindPort.trim() === "-1") return v("no-port", t("visitor.noPort"), "idle", t("visitor.noPortDetail"));
  if (conn.state === "disconnected" || (conn.state === "error" && conn.retryInMs === null)) {
    return v("disconnected", t("visitor.notConnected"), "idle", t("visitor.notConnectedDetail"));
  }
  if (!st) {
    return row.hasSecretKey ? v("waiting", t("visitor.waiting"), "idle", t("visitor.waitingDetail")) : v("no-secret", t("visitor.noSecret"), "bad", t("visitor.noSecretDetail"));
  }
  if (st.state === "error") return failed(st.reason, st.reason, null);
  if (st.state === "idle" || conn.state !== "connected") return v("waiting", t("visitor.waiting"), "busy", t("visitor.waitingDetail"));
  const at = st.localAddr;
  if (row.type === "xtcp") {
    if (st.path === "peer to peer") return v("peer-to-peer", t("visitor.peerToPeer"), "ok", t("visitor.peerToPeerDetail"), at);
    if (st.path?.startsWith("via server")) {
      const why = st.lastError ?? st.path;
      return v("fallback", t("visitor.viaServerFallback"), "ok", t("visitor.viaServerFallbackDetail", { why }), at);
    }
  }
  if (st.lastError) return failed(st.lastError, t("visitor.failedDetail", { why: st.lastError }), at);
  if (row.type === "xtcp") return v("ready", t("visitor.ready"), "ok", t("visitor.readyDetail", { addr: at }), at);
  return v("via-server", t("visitor.viaServer"), "ok", `${t("visitor.readyDetail", { addr: at })}. ${t("visitor.viaServerDetail")}`, at);
}
