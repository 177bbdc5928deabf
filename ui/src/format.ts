// Pure text formatting: status labels, byte counts, times. `now` and the locale/time zone are parameters so
// unit tests are deterministic; the app passes the defaults (system locale and zone).
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
  return new Intl.DateTimeFormat(fmt.locale, {
    timeZone: fmt.timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    ...(millis ? { fractionalSecondDigits: 3 as const } : {}),
  });
}

/** A local wall-clock time ("14:03:12", or "2:03:12 PM" in a 12-hour locale), with the date in front when it is not today. */
export function formatClock(ms: number, now: number, fmt: TimeFmt = {}): string {
  const time = clockFormat(fmt).format(ms);
  if (sameLocalDay(ms, now, fmt.timeZone)) return time;
  const date = new Intl.DateTimeFormat(fmt.locale, { timeZone: fmt.timeZone, year: "numeric", month: "short", day: "numeric" }).format(ms);
  return `${date} ${time}`;
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
      return { label: "Disconnected", tone: "idle", action: "connect" };
    case "connecting":
      return { label: `Connecting (attempt ${conn.attempt})`, tone: "busy", action: "disconnect" };
    case "connected":
      return { label: `Connected since ${formatClock(conn.since, now, fmt)}`, tone: "ok", action: "disconnect" };
    case "error": {
      if (conn.retryInMs === null) {
        return { label: `Error: ${conn.reason} — gave up`, tone: "bad", action: "connect" };
      }
      const deadline = retryDeadline ?? now + conn.retryInMs;
      return { label: `Error: ${conn.reason} — retrying in ${secondsLeft(deadline, now)}s`, tone: "bad", action: "disconnect" };
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
  const s = v >= 100 ? v.toFixed(0) : v.toFixed(1).replace(/\.0$/, "");
  return `${s} ${units[i]}`;
}

export type BadgeTone = "idle" | "busy" | "ok" | "bad" | "off";

export interface ProxyBadge {
  label: string;
  tone: BadgeTone;
  /** Full text for the tooltip / screen readers (the server's reason in full). */
  detail: string;
}

/**
 * The per-proxy badge. `status` is absent when the engine reports nothing for that name. `running`: whether an
 * engine runs (connecting, connected or retrying); when none does, every enabled proxy is "Not running", whether
 * it was just added or the engine was disconnected. `where` is what the server says to connect to.
 */
export function proxyBadge(status: ProxyStatus | undefined, enabled: boolean, running = true, where: PublicAddr[] = []): ProxyBadge {
  if (!enabled) return { label: "Disabled", tone: "off", detail: "Disabled: not registered with the server" };
  if (!running) return { label: "Not running", tone: "idle", detail: "Not running: connect to register it with the server" };
  if (!status) return { label: "Waiting", tone: "idle", detail: "Waiting: registered once the connection is up" };
  switch (status.state) {
    case "idle":
      return { label: "Waiting", tone: "idle", detail: "Waiting: registered once the connection is up" };
    case "pending":
      return { label: "Pending", tone: "busy", detail: "Pending: the server has not answered yet" };
    case "running": {
      const at = where.map((w) => w.text).join(", ") || status.remoteAddr;
      return { label: `Running at ${at}`, tone: "ok", detail: `Running: reachable at ${at}` };
    }
    case "error":
      return { label: `Refused: ${status.reason}`, tone: "bad", detail: `The server refused this proxy: ${status.reason}` };
  }
}

/** Whether an engine runs for this connection state (its proxies are registered or waiting to be). */
export function engineRuns(conn: ConnStatus): boolean {
  return conn.state === "connecting" || conn.state === "connected" || (conn.state === "error" && conn.retryInMs !== null);
}

/** "in 1.2 KiB · out 3 MiB · 2 conns" */
export function trafficLabel(s: ProxyStatus | undefined): string {
  if (!s) return "";
  const conns = s.conns === 1 ? "1 conn" : `${s.conns} conns`;
  return `in ${humanBytes(s.bytesIn)} · out ${humanBytes(s.bytesOut)} · ${conns}`;
}

/** "in 5 min", "in 45 s", "in 2 h 5 min", "expired". */
export function relativeIn(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "expired";
  if (seconds < 60) return `in ${Math.round(seconds)} s`;
  const min = Math.round(seconds / 60);
  if (min < 120) return `in ${min} min`;
  const h = Math.floor(min / 60);
  const m = min % 60;
  return m === 0 ? `in ${h} h` : `in ${h} h ${m} min`;
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

/** An OAuth error from the identity provider, explained with the form's field names. */
export interface AuthExplanation {
  /** The provider's OAuth error code, or "unreachable". */
  code: string;
  /** Plain words: what it means and which fields to check. */
  explanation: string;
}

const OAUTH_EXPLANATIONS: Record<string, string> = {
  invalid_client:
    "The identity provider does not accept this Client ID with this Client secret. Copy both again from the application in your provider (the secret may have been regenerated).",
  invalid_grant:
    "The identity provider refused the Client secret, or one of its policies denies this client. Copy the Client secret again from the provider and check the application's access policies.",
  unauthorized_client:
    "The identity provider knows this Client ID but does not let it sign in with a client secret. In the provider, allow the client-credentials flow for this application.",
  invalid_scope:
    "The identity provider does not allow the requested Scope for this client. Clear Scope, or use one the application allows.",
  invalid_request:
    "The identity provider could not understand the request. Check that Token endpoint URL is the provider's token endpoint (not the issuer or the authorize page).",
  unsupported_grant_type:
    "This Token endpoint URL does not offer client-credentials sign-in. Check that it is the provider's token endpoint.",
  access_denied: "The identity provider denied access to this client. Check the application's access policies in the provider.",
  invalid_target: "The identity provider does not issue tokens for this Audience. Clear Audience or use the one the server expects.",
};

/** Recognises the provider's OAuth error (or an unreachable token endpoint) in an error message. */
export function explainAuthError(message: string): AuthExplanation | null {
  const m = /\b(invalid_client|invalid_grant|unauthorized_client|invalid_scope|invalid_request|unsupported_grant_type|access_denied|invalid_target)\b/.exec(message);
  if (m) return { code: m[1]!, explanation: OAUTH_EXPLANATIONS[m[1]!]! };
  if (/cannot reach the token endpoint/i.test(message)) {
    return {
      code: "unreachable",
      explanation: "Portway could not reach the identity provider. Check Token endpoint URL, your network, and that the provider is up.",
    };
  }
  return null;
}
