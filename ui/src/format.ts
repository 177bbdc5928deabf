// Pure text formatting: status labels, byte counts, times. `now` and the locale/time zone are parameters so
// unit tests are deterministic; the app passes the defaults (system locale and zone).
import type { ConnStatus, LogLine, ProxyStatus, TokenInfo } from "./types";

export interface TimeFmt {
  locale?: string | undefined;
  timeZone?: string | undefined;
}

function sameLocalDay(a: number, b: number, tz: string | undefined): boolean {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
  return f.format(a) === f.format(b);
}

/** A local wall-clock time ("14:03:12"), with the date in front when it is not today. */
export function formatClock(ms: number, now: number, fmt: TimeFmt = {}): string {
  const time = new Date(ms).toLocaleTimeString(fmt.locale, {
    timeZone: fmt.timeZone,
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
  });
  if (sameLocalDay(ms, now, fmt.timeZone)) return time;
  const date = new Date(ms).toLocaleDateString(fmt.locale, { timeZone: fmt.timeZone, year: "numeric", month: "short", day: "numeric" });
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

/** The per-proxy badge. `status` is absent when the engine reports nothing for that name (not started). */
export function proxyBadge(status: ProxyStatus | undefined, enabled: boolean): ProxyBadge {
  if (!enabled) return { label: "Disabled", tone: "off", detail: "Disabled: not registered with the server" };
  if (!status) return { label: "Not started", tone: "idle", detail: "Not started: connect to register it" };
  switch (status.state) {
    case "idle":
      return { label: "Idle", tone: "idle", detail: "Idle: waiting for the connection" };
    case "pending":
      return { label: "Pending", tone: "busy", detail: "Pending: the server has not answered yet" };
    case "running":
      return { label: `Running on ${status.remoteAddr}`, tone: "ok", detail: `Running: reachable on ${status.remoteAddr}` };
    case "error":
      return { label: `Refused: ${status.reason}`, tone: "bad", detail: `The server refused this proxy: ${status.reason}` };
  }
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

/** One log line as shown and as copied: "14:03:12.345 INFO  portway_client::control: logged in". */
export function formatLogLine(l: LogLine, fmt: TimeFmt = {}): string {
  const d = new Date(l.ts);
  const hms = d.toLocaleTimeString(fmt.locale ?? "en-GB", { timeZone: fmt.timeZone, hour12: false, hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const ms = String(d.getMilliseconds()).padStart(3, "0");
  const target = l.target ? `${l.target}: ` : "";
  return `${hms}.${ms} ${l.level.padEnd(5)} ${target}${l.message}`;
}
