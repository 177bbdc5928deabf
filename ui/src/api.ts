// The only module that talks to the Tauri side: typed wrappers over the commands and events of
// docs/ui-contract.md. Every rejection becomes an `ApiError` carrying the contract's `{code, message}`.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { CommandError, DiagStep, Imported, KeychainStatus, LogLine, Profile, Status, TokenInfo } from "./types";

export class ApiError extends Error implements CommandError {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.code = code;
  }
}

/** Normalises whatever `invoke` rejected with into `{code, message}`; the message is shown as is. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e && typeof e === "object" && "message" in e) {
    const o = e as { code?: unknown; message?: unknown };
    const code = typeof o.code === "string" ? o.code : "unknown";
    return new ApiError(code, String(o.message));
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
  getProfile: () => call<Profile>("get_profile"),
  saveProfile: (profile: Profile) => call<Profile>("save_profile", { profile }),
  setSecret: (secret: string) => call<null>("set_secret", { secret }),
  clearSecret: () => call<null>("clear_secret"),
  /** A proxy's basic-auth password, into the keychain (never into profile.json). */
  setProxyPassword: (name: string, password: string) => call<null>("set_proxy_password", { name, password }),
  clearProxyPassword: (name: string) => call<null>("clear_proxy_password", { name }),
  keychainStatus: () => call<KeychainStatus>("keychain_status"),
  connect: () => call<null>("connect"),
  disconnect: () => call<null>("disconnect"),
  getStatus: () => call<Status>("get_status"),
  /** `secret: null` uses the stored secret. */
  testSignIn: (profile: Profile, secret: string | null) => call<TokenInfo>("test_sign_in", { profile, secret }),
  /** "Check": DNS, TCP, TLS, token, login with the form's profile; `secret: null` uses the stored secret. */
  diagnose: (profile: Profile, secret: string | null) => call<DiagStep[]>("diagnose", { profile, secret }),
  getLogs: () => call<LogLine[]>("get_logs"),
  importFrpc: (text: string) => call<Imported>("import_frpc", { text }),
  exportFrpc: () => call<string>("export_frpc"),

  onStatus: (cb: (s: Status) => void): Promise<UnlistenFn> => listen<Status>("status-changed", (e) => cb(e.payload)),
  onLog: (cb: (l: LogLine) => void): Promise<UnlistenFn> => listen<LogLine>("log", (e) => cb(e.payload)),
};
