// The IPC types, exactly as in docs/ui-contract.md (camelCase JSON). Keep the two in step.

export type Transport = "tcp" | "websocket" | "wss";
export type AuthMethod = "oidc" | "token";
/** The proxy types the engine runs (stcp/sudp/xtcp are not offered: the engine refuses them). */
export type ProxyType = "tcp" | "udp" | "http" | "https" | "tcpmux";
export const PROXY_TYPES: readonly ProxyType[] = ["tcp", "udp", "http", "https", "tcpmux"];

/** What import_frpc brought over, and the proxies/visitors it left out ("proxy NAME: reason"). */
export interface Imported {
  /** The profile it went into (a new one when imported as new). */
  id: string;
  profile: Profile;
  skipped: string[];
}

export interface Profile {
  server: { addr: string; port: number; protocol: Transport; tls: boolean };
  auth: {
    method: AuthMethod;
    tokenEndpointUrl: string;
    clientId: string;
    audience: string;
    scope: string;
    /** Read-only: a secret is stored in the OS keychain (never the secret itself). */
    hasSecret: boolean;
  };
  proxies: ProxyDef[];
  options: { connectOnLaunch: boolean; startMinimized: boolean; launchAtLogin: boolean };
}

export interface ProxyDef {
  name: string;
  type: ProxyType;
  localIp: string;
  localPort: number;
  /** tcp/udp only (0 for the others). */
  remotePort: number;
  enabled: boolean;
  /** http/https/tcpmux: the names the server routes to this proxy (with or instead of `subdomain`). */
  customDomains: string[];
  /** http/https/tcpmux: served as `<subdomain>.<server's subDomainHost>`. */
  subdomain: string;
  /** http: URL path prefixes routed here (empty: all). */
  locations: string[];
  /** http/tcpmux: the user visitors must give (basic auth); the password is in the keychain. */
  httpUser: string;
  /** http: the Host header the local service sees. */
  hostHeaderRewrite: string;
  /** tcpmux: "httpconnect" (the only multiplexer frp has). */
  multiplexer: string;
  /** Read-only: an httpPassword for this proxy is stored in the OS keychain (never the password itself). */
  hasHttpPassword: boolean;
}

export type ConnStatus =
  | { state: "disconnected" }
  | { state: "connecting"; attempt: number }
  | { state: "connected"; runId: string; since: number /* unix ms */ }
  | { state: "error"; reason: string; retryInMs: number | null /* null: gave up */ };

interface Counters {
  bytesIn: number;
  bytesOut: number;
  conns: number;
}
export type ProxyStatus =
  | ({ state: "idle" | "pending" } & Counters)
  | ({ state: "running"; remoteAddr: string } & Counters)
  | ({ state: "error"; reason: string } & Counters);

export interface Status {
  conn: ConnStatus;
  proxies: Record<string, ProxyStatus>;
  /** A saved change (server address, auth, secret) applies only after Disconnect and Connect. */
  reconnectNeeded?: boolean;
  /** The profile this status belongs to (status-changed events come for every profile). */
  profileId?: string;
}

/** One server profile in the list. */
export interface ProfileSummary {
  id: string;
  name: string;
  status: Status;
}

export interface TokenInfo {
  issuer: string;
  subject: string;
  audience: string[];
  clientId: string;
  expiresAt: number /* unix s */;
  expiresIn: number /* s */;
  scope: string;
  algorithm: string;
}

export type LogLevel = "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR";
export const LOG_LEVELS: readonly LogLevel[] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];

export interface LogLine {
  ts: number /* unix ms */;
  level: LogLevel;
  target: string;
  message: string;
}

export interface KeychainStatus {
  available: boolean;
  /** How to fix, when unavailable. */
  message: string | null;
}

export type ErrorCode =
  | "invalid_input"
  | "keychain_unavailable"
  | "no_secret"
  | "not_connected"
  | "already_connected"
  | "sign_in_failed"
  | "import_failed"
  | "unknown_profile"
  | "io";

/** Every command error, as it crosses the IPC boundary. */
export interface CommandError {
  code: ErrorCode | string;
  message: string;
}

/** One step of "Check" (the `diagnose` command): always five, in order. */
export type DiagStepKind = "dns" | "tcp" | "tls" | "token" | "login";
export type DiagOutcome = "ok" | "warn" | "fail" | "skipped";

/** The server's certificate as the TLS step saw it (times: seconds since the epoch). */
export interface DiagCertificate {
  subject: string;
  issuer: string;
  notBefore: number;
  notAfter: number;
  selfSigned: boolean;
  trusted: boolean;
  /** What it was checked against, and why not trusted. */
  trust: string;
}

export interface DiagStep {
  step: DiagStepKind;
  outcome: DiagOutcome;
  /** Stable: `refused`, `timeout`, `wrongSecret`, `wrongToken`, `untrusted`, `notRun`, ... */
  code: string;
  summary: string;
  /** What to do (empty when nothing). */
  fix: string;
  /** The underlying error, or the provider's/server's own words. */
  detail: string;
  millis: number;
  certificate?: DiagCertificate;
}
