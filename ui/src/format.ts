// Pure text formatting: status labels, byte counts, times. `now` and the locale/time zone are parameters so
// unit tests are deterministic; the app passes the defaults (the chosen language's locale, the system zone).
import { language, locale, t, type PlainKey } from "./i18n";
import type { ConnStatus, LogLine, ProxyStatus, ProxyType, TokenInfo } from "./types";

export interface TimeFmt {
  locale?: string | undefined;
  timeZone?: string | undefined;
}

function sameLocalDay(a: number, b: number, tz: string | undefined): boolean {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
  return f.format(a) === f.format(b);
}

/** The one time-of-day format of the app: Intl.DateTimeFormat in the OS/browser locale (12 or 24 hours as that
 * locale has it), used for the header, the sign-in result and the log lines alike. */
export function clockFormat(fmt: TimeFmt = {}, millis = false): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat(fmt.locale ?? locale(), {
    timeZone: fmt.timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    ...(millis ? { fractionalSecondDigits: 3 as const } : {}),
  });
}

/** The one date format of the app (the certificate's expiry, a time that is not today), in the same locale. */
export function dateFormat(fmt: TimeFmt = {}): Intl.DateTimeFormat {
  return new Intl.DateTimeFormat(fmt.locale ?? locale(), { timeZone: fmt.timeZone, year: "numeric", month: "short", day: "numeric" });
}

/** A local wall-clock time ("14:03:12", or "2:03:12 PM" in a 12-hour locale), with the date in front when it is not today. */
export function formatClock(ms: number, now: number, fmt: TimeFmt = {}): string {
  const time = clockFormat(fmt).format(ms);
  if (sameLocalDay(ms, now, fmt.timeZone)) return time;
  return `${dateFormat(fmt).format(ms)} ${time}`;
}

/** Whole seconds left until `deadline`, never negative (rounded up: "1s" until it is really due). */
export function secondsLeft(deadline: number, now: number): number {
  return Math.max(0, Math.ceil((deadline - now) / 1000));
}

export type ConnTone = "idle" | "busy" | "ok" | "bad";

export interface ConnView {
  label: string;
  tone: ConnTone;
  /** The single button: Connect when nothing runs, Disconnect when an engine runs (also while connecting/retrying). */
  action: "connect" | "disconnect";
}

/**
 * The header line for a connection status. `retryDeadline` is when the retry in an error status is due
 * (receipt time + retryInMs), so the countdown can tick between status events.
 */
export function connView(conn: ConnStatus, now: number, retryDeadline: number | null = null, fmt: TimeFmt = {}): ConnView {
  switch (conn.state) {
    case "disconnected":
      return { label: t("conn.disconnected"), tone: "idle", action: "connect" };
    case "connecting":
      return { label: t("conn.connecting", { attempt: conn.attempt }), tone: "busy", action: "disconnect" };
    case "connected":
      return { label: t("conn.connected", { time: formatClock(conn.since, now, fmt) }), tone: "ok", action: "disconnect" };
    case "error": {
      // The engine's words are English: in another language the line leaves them out and the banner under the
      // header says what failed, with them as its detail (see connExplanation).
      const en = language() === "en";
      if (conn.retryInMs === null) {
        const label = en ? t("conn.errorGaveUp", { reason: conn.reason }) : t("conn.errorGaveUpShort");
        return { label, tone: "bad", action: "connect" };
      }
      const seconds = secondsLeft(retryDeadline ?? now + conn.retryInMs, now);
      const label = en ? t("conn.errorRetrying", { reason: conn.reason, seconds }) : t("conn.errorRetryingShort", { seconds });
      return { label, tone: "bad", action: "disconnect" };
    }
  }
}

/** Binary units, one decimal below 100 ("1.5 KiB", "12.3 MiB", "512 B"). */
export function humanBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "0 B";
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = new Intl.NumberFormat(locale(), { maximumFractionDigits: v >= 100 ? 0 : 1, useGrouping: false }).format(v);
  return `${s} ${units[i]}`;
}

export type BadgeTone = "idle" | "busy" | "ok" | "bad" | "off";

export interface ProxyBadge {
  label: string;
  tone: BadgeTone;
  /** Full text for the tooltip / screen readers (the server's reason in full). */
  detail: string;
  /** The server's own words, shown under the label when the label does not hold them (another language). */
  original?: string | null;
}

/**
 * The per-proxy badge. `status` is absent when the engine reports nothing for that name. `running`: whether an
 * engine runs (connecting, connected or retrying); when none does, every enabled proxy is "Not running", whether
 * it was just added or the engine was disconnected. `where` is what the server says to connect to.
 */
export function proxyBadge(status: ProxyStatus | undefined, enabled: boolean, running = true, where: PublicAddr[] = []): ProxyBadge {
  if (!enabled) return { label: t("badge.disabled"), tone: "off", detail: t("badge.disabledDetail") };
  if (!running) return { label: t("badge.notRunning"), tone: "idle", detail: t("badge.notRunningDetail") };
  if (!status) return { label: t("badge.waiting"), tone: "idle", detail: t("badge.waitingDetail") };
  switch (status.state) {
    case "idle":
      return { label: t("badge.waiting"), tone: "idle", detail: t("badge.waitingDetail") };
    case "pending":
      return { label: t("badge.pending"), tone: "busy", detail: t("badge.pendingDetail") };
    case "running": {
      const at = where.map((w) => w.text).join(", ") || status.remoteAddr;
      return { label: t("badge.running", { at }), tone: "ok", detail: t("badge.runningDetail", { at }) };
    }
    case "error": {
      const detail = t("badge.refusedDetail", { reason: status.reason });
      if (language() === "en") return { label: t("badge.refused", { reason: status.reason }), tone: "bad", detail, original: null };
      // In another language a refusal the app recognises (port taken, port not allowed) is explained, any other
      // gets a lead-in; the server's own words are shown under it.
      const explained = explainAuthError(status.reason);
      const label = explained ? t("badge.refused", { reason: explained.explanation }) : t("status.proxyRefused");
      return { label, tone: "bad", detail, original: status.reason };
    }
  }
}

/** Whether an engine runs for this connection state (its proxies are registered or waiting to be). */
export function engineRuns(conn: ConnStatus): boolean {
  return conn.state === "connecting" || conn.state === "connected" || (conn.state === "error" && conn.retryInMs !== null);
}

/** "in 1.2 KiB · out 3 MiB · 2 conns" */
export function trafficLabel(s: ProxyStatus | undefined): string {
  if (!s) return "";
  const conns = s.conns === 1 ? t("traffic.oneConn") : t("traffic.conns", { n: s.conns });
  return t("traffic.label", { in: humanBytes(s.bytesIn), out: humanBytes(s.bytesOut), conns });
}

/** "in 5 min", "in 45 s", "in 2 h 5 min", "expired". */
export function relativeIn(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return t("rel.expired");
  if (seconds < 60) return t("rel.seconds", { s: Math.round(seconds) });
  const min = Math.round(seconds / 60);
  if (min < 120) return t("rel.minutes", { min });
  const h = Math.floor(min / 60);
  const m = min % 60;
  return m === 0 ? t("rel.hours", { h }) : t("rel.hoursMinutes", { h, min: m });
}

/** Token expiry: local time of `expiresAt` and the relative "in N min" from `expiresIn`. */
export function expiryLabel(t: Pick<TokenInfo, "expiresAt" | "expiresIn">, now: number, fmt: TimeFmt = {}): string {
  return `${formatClock(t.expiresAt * 1000, now, fmt)} (${relativeIn(t.expiresIn)})`;
}

/** One log line as shown and as copied: "14:03:12.345 INFO  portway_client::control: logged in" (the time in the
 * same locale format as everywhere else, with milliseconds). */
export function formatLogLine(l: LogLine, fmt: TimeFmt = {}): string {
  const target = l.target ? `${l.target}: ` : "";
  return `${clockFormat(fmt, true).format(l.ts)} ${l.level.padEnd(5)} ${target}${l.message}`;
}

/** Where a running proxy is reached: the text to show/copy and, for http/https, the URL to open. */
export interface PublicAddr {
  text: string;
  url?: string;
}

/** `host:port`, bracketing an IPv6 host. */
function hostPort(host: string, port: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * What a person connects to for a running proxy. The server answers NewProxy with `remote_addr`: ":6000" for
 * tcp/udp (the port on the server, so the server address from the profile goes in front), and "domain:port" per
 * route, comma-separated, for http/https/tcpmux (no port when it is 80/443).
 */
export function publicAddrs(type: ProxyType, remoteAddr: string, serverAddr: string): PublicAddr[] {
  const parts = [...new Set(remoteAddr.split(",").map((s) => s.trim()).filter((s) => s !== ""))];
  return parts.map((a) => {
    if (type === "http" || type === "https") {
      const u = `${type}://${a}`;
      return { text: u, url: u };
    }
    if (type === "tcpmux") return { text: a };
    const m = /^(.*):(\d+)$/.exec(a);
    if (!m) return { text: a };
    const host = m[1]!;
    const unspecified = host === "" || host === "0.0.0.0" || host === "::" || host === "[::]";
    return { text: hostPort(unspecified ? serverAddr : host, m[2]!) };
  });
}

/** An error the app explains: the provider's OAuth error code, or one of the engine's errors it recognises. */
export interface AuthExplanation {
  /** The provider's OAuth error code, "unreachable" (token endpoint), or one of ENGINE_ERRORS' codes. */
  code: string;
  /** Plain words, in the chosen language: what it means and which fields to check. */
  explanation: string;
}

const OAUTH_CODES = [
  "invalid_client",
  "invalid_grant",
  "unauthorized_client",
  "invalid_scope",
  "invalid_request",
  "unsupported_grant_type",
  "access_denied",
  "invalid_target",
] as const;

/** Whether an explanation's code is the identity provider's own (its answer is then shown as "the provider's answer"). */
export const isProviderCode = (code: string): boolean => (OAUTH_CODES as readonly string[]).includes(code);

/** The engine's errors (English text from Rust) that the app recognises, first match wins. */
const ENGINE_ERRORS: [code: string, re: RegExp, key: PlainKey][] = [
  ["unreachable", /cannot reach the token endpoint/i, "explain.tokenUnreachable"],
  ["wrongToken", /authorization failed|auth\.token does not match/i, "explain.wrongToken"],
  ["portNotAllowed", /is not allowed by the server's allowPorts/i, "explain.portNotAllowed"],
  ["portTaken", /cannot be opened on the server|port already used|address already in use/i, "explain.portTaken"],
  ["nameTaken", /proxy \[[^\]]*\] already exists/i, "explain.nameTaken"],
  // A server with detailedErrorsToClient = false says only frp's summary; the reason is in its log.
  ["loginHidden", /register control error/i, "explain.loginHidden"],
  ["proxyHidden", /new proxy \[[^\]]*\] error/i, "explain.proxyHidden"],
  ["routeTaken", /router config conflict/i, "explain.routeTaken"],
  ["vhostOff", /not supported when vhost \w+ port is not set/i, "explain.vhostOff"],
  ["subdomainOff", /subdomain is not supported/i, "explain.subdomainOff"],
  ["domainUnderSubdomainHost", /should not belong to subdomain host/i, "explain.domainUnderSubdomainHost"],
  ["tlsRequired", /tls\.force|transport\.tls\.force/i, "explain.tlsRequired"],
  ["serverRefused", /connection refused|os error 111/i, "explain.serverRefused"],
  ["serverTimeout", /timed out|timeout/i, "explain.serverTimeout"],
  ["serverNotFound", /failed to lookup|name or service not known|no address in DNS|cannot be found in DNS|nodename nor servname/i, "explain.serverNotFound"],
];

/** Recognises the provider's OAuth error, or an engine error the app knows, in an error message. */
export function explainAuthError(message: string): AuthExplanation | null {
  const m = new RegExp(`\\b(${OAUTH_CODES.join("|")})\\b`).exec(message);
  if (m) {
    const code = m[1] as (typeof OAUTH_CODES)[number];
    return { code, explanation: t(`oauth.${code}`) };
  }
  for (const [code, re, key] of ENGINE_ERRORS) if (re.test(message)) return { code, explanation: t(key) };
  return null;
}

/** The banner under the header for a connection error: the explanation when the app recognises the engine's words;
 * in another language than English a lead-in naming what failed otherwise (the words are its detail); else null. */
export function connExplanation(conn: ConnStatus): AuthExplanation | null {
  if (conn.state !== "error") return null;
  const explained = explainAuthError(conn.reason);
  if (explained || language() === "en") return explained;
  return { code: "connection", explanation: t("status.connFailed") };
}
