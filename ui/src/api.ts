// The only module that talks to the Tauri side: typed wrappers over the commands and events of
// docs/ui-contract.md. Every rejection becomes an `ApiError` carrying the contract's `{code, message}`.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { CommandError, DiagStep, ErrorReason, Imported, KeychainStatus, LogLine, PageStart, Profile, ProfileSummary, Status, TokenInfo } from "./types";

export class ApiError extends Error implements CommandError {
  readonly code: string;
  readonly reason: ErrorReason | undefined;
  constructor(code: string, message: string, reason?: ErrorReason) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.reason = reason;
  }
}

/** Normalises whatever `invoke` rejected with into `{code, message, reason?}` (see errors.ts for how it is shown). */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { code?: unknown; message?: unknown; reason?: unknown };
    const code = typeof o.code === "string" ? o.code : "unknown";
    const r = o.reason as { code?: unknown } | null | undefined;
    const reason = r && typeof r === "object" && typeof r.code === "string" ? (r as ErrorReason) : undefined;
    return new ApiError(code, String(o.message), reason);
  }
  if (typeof e === "string") return new ApiError("unknown", e);
  return new ApiError("unknown", "Unexpected error from the app backend");
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    throw toApiError(e);
  }
}

/** True when the page runs inside the Tauri webview (or under a test mock of it). */
export function hasBackend(): boolean {
  return typeof window !== "undefined" && "__TAURI_INTERNALS__" in window;
}

export const api = {
  listProfiles: () => call<ProfileSummary[]>("list_profiles"),
  addProfile: (name: string) => call<ProfileSummary>("add_profile", { name }),
  renameProfile: (id: string, name: string) => call<null>("rename_profile", { id, name }),
  /** Disconnects the profile and removes it with its keychain entries. */
  deleteProfile: (id: string) => call<null>("delete_profile", { id }),
  getProfile: (id: string) => call<Profile>("get_profile", { id }),
  saveProfile: (id: string, profile: Profile) => call<Profile>("save_profile", { id, profile }),
  setSecret: (id: string, secret: string) => call<null>("set_secret", { id, secret }),
  clearSecret: (id: string) => call<null>("clear_secret", { id }),
  /** A proxy's basic-auth password, into the keychain (never into profiles.json). */
  setProxyPassword: (id: string, name: string, password: string) => call<null>("set_proxy_password", { id, name, password }),
  clearProxyPassword: (id: string, name: string) => call<null>("clear_proxy_password", { id, name }),
  /** An stcp/sudp/xtcp proxy's secret key, into the keychain. */
  setProxySecretKey: (id: string, name: string, secret: string) => call<null>("set_proxy_secret_key", { id, name, secret }),
  /** A visitor's secret key, into the keychain. */
  setVisitorSecretKey: (id: string, name: string, secret: string) => call<null>("set_visitor_secret_key", { id, name, secret }),
  /** Turns a stored visitor on or off (connecting a disconnected server when turned on); returns the stored profile. */
  setVisitorEnabled: (id: string, name: string, enabled: boolean) => call<Profile>("set_visitor_enabled", { id, name, enabled }),
  keychainStatus: () => call<KeychainStatus>("keychain_status"),
  /** The page's first state in one call: language choice, profiles, the first one's settings and status, logs, keychain. */
  pageStart: () => call<PageStart>("page_start"),
  connect: (id: string) => call<null>("connect", { id }),
  disconnect: (id: string) => call<null>("disconnect", { id }),
  connectAll: () => call<null>("connect_all"),
  disconnectAll: () => call<null>("disconnect_all"),
  getStatus: (id: string) => call<Status>("get_status", { id }),
  /** `secret: null` uses the profile's stored secret. */
  testSignIn: (id: string, profile: Profile, secret: string | null) => call<TokenInfo>("test_sign_in", { id, profile, secret }),
  /** "Check": DNS, TCP, TLS, token, login with the form's profile; `secret: null` uses the profile's stored secret. */
  diagnose: (id: string, profile: Profile, secret: string | null) => call<DiagStep[]>("diagnose", { id, profile, secret }),
  getLogs: () => call<LogLine[]>("get_logs"),
  /** Into the profile `id`, or a new profile when `id` is null. */
  importFrpc: (id: string | null, text: string) => call<Imported>("import_frpc", { id, text }),
  exportFrpc: (id: string) => call<string>("export_frpc", { id }),
  /** The language chosen in Options: "auto", "en" or "zh-CN" (an app-level option in profiles.json). */
  getLanguage: () => call<string>("get_language"),
  /** Stores the choice and relabels the tray; `osLocale` is the OS locale the window sees (what "auto" follows). */
  setLanguage: (language: string, osLocale: string) => call<null>("set_language", { language, osLocale }),
  /** Opens an http(s) URL in the OS browser (tauri-plugin-opener). */
  openUrl: (url: string) => call<null>("plugin:opener|open_url", { url }),

  /** Every profile's status changes arrive here, each with its `profileId`. */
  onStatus: (cb: (s: Status) => void): Promise<UnlistenFn> => listen<Status>("status-changed", (e) => cb(e.payload)),
  onLog: (cb: (l: LogLine) => void): Promise<UnlistenFn> => listen<LogLine>("log", (e) => cb(e.payload)),
};
