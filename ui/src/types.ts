// The IPC types, exactly as in docs/ui-contract.md (camelCase JSON). Keep the two in step.

export type Transport = "tcp" | "websocket" | "wss" | "quic";
export type AuthMethod = "oidc" | "token";
/** The proxy types the engine runs. stcp/sudp/xtcp are secret: reached only through a visitor with the key. */
export type ProxyType = "tcp" | "udp" | "http" | "https" | "tcpmux" | "stcp" | "sudp" | "xtcp";
export const PROXY_TYPES: readonly ProxyType[] = ["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"];
/** A visitor reaches a secret proxy of its own type. */
export type VisitorType = "stcp" | "sudp" | "xtcp";
export const VISITOR_TYPES: readonly VisitorType[] = ["stcp", "sudp", "xtcp"];

/** What import_frpc brought over, and the proxies/visitors it left out (or brought without some settings). */
export interface Imported {
  /** The profile it went into (a new one when imported as new). */
  id: string;
  profile: Profile;
  skipped: Skipped[];
}

/** Why an imported proxy or visitor was left out or came without some settings (the window words it: i18n
 * `import.skipped.<code>`; `detail` is frp's own error, shown under the sentence). */
export type Skipped =
  | { code: "proxyInvalid" | "visitorInvalid"; name: string; detail: string }
  | { code: "typeNotOffered"; name: string; type: string }
  | { code: "pluginNotSupported"; name: string; plugin: string }
  | { code: "proxySettingsDropped" | "visitorSettingsDropped"; name: string; settings: string }
  | { code: "fallbackNotImported"; name: string; fallbackTo: string }
  | { code: "globalSettingsDropped"; settings: string };

export interface Profile {
  /** `user`: frp's user name (the server names the proxies USER.NAME); `tcpMux`: must match the server's. */
  server: { addr: string; port: number; protocol: Transport; tls: boolean; user: string; tcpMux: boolean };
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
  /** "Connect to a private service": visitors of other clients' stcp/sudp/xtcp proxies. */
  visitors?: VisitorDef[];
  options: { connectOnLaunch: boolean; startMinimized: boolean; launchAtLogin: boolean };
}

export interface VisitorDef {
  name: string;
  type: VisitorType;
  /** The provider's proxy name. */
  serverName: string;
  /** The provider's user (empty: this client's own). */
  serverUser: string;
  bindAddr: string;
  /** The local port to open; -1: none (an stcp visitor used only as an xtcp visitor's fallback). */
  bindPort: number;
  enabled: boolean;
  /** xtcp: the stcp visitor to use when no peer-to-peer tunnel comes up. */
  fallbackTo: string;
  /** Read-only: a secretKey is stored in the OS keychain. */
  hasSecretKey: boolean;
  /** Input only: the name before a rename (its keychain entry moves with it). */
  renamedFrom?: string;
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
  /** stcp/sudp/xtcp: users whose visitors may connect ("*": anyone; empty: your own user). */
  allowUsers?: string[];
  /** Read-only: stcp/sudp/xtcp: a secretKey is stored in the OS keychain. */
  hasSecretKey?: boolean;
  /** Input only: the name before a rename (its keychain entries move with it). */
  renamedFrom?: string;
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

/** A visitor's engine state: `idle` (not listening), `listening` at `localAddr`, or `error` (port not opened). */
export type VisitorStatus = (
  | { state: "idle" }
  | { state: "listening"; localAddr: string }
  | { state: "error"; reason: string }
) &
  Counters & {
    /** The last failed visitor connection (wrong secret, unknown server name, no peer-to-peer tunnel...). */
    lastError?: string;
    /** xtcp: "peer to peer" or "via server (fallbackTo NAME)". */
    path?: string;
  };

export interface Status {
  conn: ConnStatus;
  proxies: Record<string, ProxyStatus>;
  /** Visitors by name (the enabled ones). */
  visitors?: Record<string, VisitorStatus>;
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

/** `page_start`: what the page shows first, in one answer (the first profile's settings, status and the log). */
export interface PageStart {
  /** The language choice: "auto", "en" or "zh-CN". */
  language: string;
  profiles: ProfileSummary[];
  profile: Profile | null;
  status: Status | null;
  logs: LogLine[];
  keychain: KeychainStatus;
}

export interface KeychainStatus {
  available: boolean;
  /** Why not: "unavailable" (no keychain answers) or "refused"; the window says how to fix it (i18n `keychain.<code>`). */
  code: "unavailable" | "refused" | null;
  /** The keychain's own words, shown under the window's sentence. */
  detail: string | null;
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
  | "io"
  | "internal";

/** The specifics of a command error, for the window's sentence (i18n `reason.<code>`). */
export type ErrorReason =
  | { code: "noSecret"; profile: string }
  | { code: "noHttpPassword" | "noProxySecretKey"; proxy: string }
  | { code: "noVisitorSecretKey"; visitor: string }
  | { code: "invalidField"; field: string }
  | { code: "nameTaken"; name: string }
  | { code: "notAllConnected"; profiles: string };

/** Every command error, as it crosses the IPC boundary. `message` is English (shown as is in English, as the
 * detail of the translated sentence in another language). */
export interface CommandError {
  code: ErrorCode | string;
  message: string;
  reason?: ErrorReason;
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
