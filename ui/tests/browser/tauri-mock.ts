// A stand-in for the Tauri v2 IPC, injected into the page before its scripts (page.addInitScript).
// It implements what @tauri-apps/api v2 uses: `__TAURI_INTERNALS__.invoke` / `transformCallback` and the
// event plugin (`plugin:event|listen` with a callback id, `unregisterListener`). Commands answer from a small
// stateful backend shaped by the contract; tests steer it through `window.__mock`.
//
// `installTauriMock` is serialised with toString(): it must not reference anything outside its own body.
import type { KeychainStatus, LogLine, Profile, Status, TokenInfo } from "../../src/types";

export interface MockSeed {
  profile: Profile;
  status: Status;
  keychain: KeychainStatus;
  logs: LogLine[];
  tokenInfo: TokenInfo;
  exportText: string;
  /** Per command: reject with this `{code, message}` instead of answering. */
  failures: Record<string, { code: string; message: string }>;
  /** Per command: answer with this value instead of the default behaviour. */
  replies: Record<string, unknown>;
}

export interface MockHandle {
  calls: { cmd: string; args: Record<string, unknown> | undefined }[];
  state: MockSeed & { secret: string | null; proxyPasswords: Record<string, string> };
  emit(event: string, payload: unknown): void;
  fail(cmd: string, err: { code: string; message: string } | null): void;
  reply(cmd: string, value: unknown): void;
  listeners(event: string): number;
  copied: string[];
}

declare global {
  interface Window {
    __mock: MockHandle;
  }
}

export function installTauriMock(seed: MockSeed): void {
  const state = { ...seed, secret: seed.profile.auth.hasSecret ? "stored-secret" : null, proxyPasswords: {} as Record<string, string> };
  const callbacks = new Map<number, (payload: unknown) => void>();
  const listeners = new Map<string, { eventId: number; handler: number }[]>();
  let nextId = 1;
  const calls: MockHandle["calls"] = [];
  const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

  const handle = (cmd: string, args: Record<string, unknown> | undefined): unknown => {
    if (cmd === "plugin:event|listen") {
      const a = args as { event: string; handler: number };
      const eventId = nextId++;
      const list = listeners.get(a.event) ?? [];
      list.push({ eventId, handler: a.handler });
      listeners.set(a.event, list);
      return eventId;
    }
    if (cmd === "plugin:event|unlisten") {
      const a = args as { event: string; eventId: number };
      listeners.set(a.event, (listeners.get(a.event) ?? []).filter((l) => l.eventId !== a.eventId));
      return null;
    }
    const failure = state.failures[cmd];
    if (failure) throw failure;
    if (cmd in state.replies) return clone(state.replies[cmd]);
    switch (cmd) {
      case "get_profile":
        return clone(state.profile);
      case "save_profile": {
        const p = clone((args as { profile: Profile }).profile);
        p.auth.hasSecret = state.secret !== null;
        state.profile = p;
        return clone(p);
      }
      case "set_secret":
        if (!state.keychain.available) throw { code: "keychain_unavailable", message: state.keychain.message };
        state.secret = (args as { secret: string }).secret;
        state.profile.auth.hasSecret = true;
        return null;
      case "set_proxy_password": {
        if (!state.keychain.available) throw { code: "keychain_unavailable", message: state.keychain.message };
        const a = args as { name: string; password: string };
        state.proxyPasswords[a.name] = a.password;
        const row = state.profile.proxies.find((p) => p.name === a.name);
        if (row) row.hasHttpPassword = true;
        return null;
      }
      case "clear_proxy_password":
        delete state.proxyPasswords[(args as { name: string }).name];
        return null;
      case "clear_secret":
        state.secret = null;
        state.profile.auth.hasSecret = false;
        return null;
      case "keychain_status":
        return clone(state.keychain);
      case "connect":
      case "disconnect":
        return null;
      case "get_status":
        return clone(state.status);
      case "test_sign_in":
        return clone(state.tokenInfo);
      case "get_logs":
        return clone(state.logs);
      case "import_frpc":
        return { profile: clone(state.profile), skipped: [] };
      case "export_frpc":
        return state.exportText;
      default:
        throw { code: "invalid_input", message: `mock: unknown command ${cmd}` };
    }
  };

  const w = window as unknown as Record<string, unknown>;
  w.__TAURI_INTERNALS__ = {
    invoke: (cmd: string, args?: Record<string, unknown>) => {
      calls.push({ cmd, args: args === undefined ? undefined : clone(args) });
      // Answer asynchronously, like the real IPC.
      return new Promise((resolve, reject) => {
        setTimeout(() => {
          try {
            resolve(handle(cmd, args));
          } catch (e) {
            reject(e);
          }
        }, 5);
      });
    },
    transformCallback: (cb: (p: unknown) => void, once = false) => {
      const id = nextId++;
      callbacks.set(id, (p) => {
        if (once) callbacks.delete(id);
        cb(p);
      });
      return id;
    },
    unregisterCallback: (id: number) => callbacks.delete(id),
    convertFileSrc: (p: string) => p,
    metadata: { currentWindow: { label: "main" }, currentWebview: { windowLabel: "main", label: "main" } },
  };
  w.__TAURI_EVENT_PLUGIN_INTERNALS__ = {
    unregisterListener: (event: string, eventId: number) =>
      listeners.set(event, (listeners.get(event) ?? []).filter((l) => l.eventId !== eventId)),
  };

  const copied: string[] = [];
  // Record clipboard writes (headless Chromium may refuse the real clipboard without a user gesture).
  Object.defineProperty(navigator, "clipboard", {
    configurable: true,
    value: {
      writeText: (t: string) => {
        copied.push(t);
        return Promise.resolve();
      },
    },
  });

  const mock: MockHandle = {
    calls,
    state,
    copied,
    emit(event, payload) {
      if (event === "status-changed") state.status = clone(payload as Status);
      for (const l of listeners.get(event) ?? []) callbacks.get(l.handler)?.({ event, id: l.eventId, payload: clone(payload) });
    },
    fail(cmd, err) {
      if (err) state.failures[cmd] = err;
      else delete state.failures[cmd];
    },
    reply(cmd, value) {
      state.replies[cmd] = value;
    },
    listeners: (event) => (listeners.get(event) ?? []).length,
  };
  w.__mock = mock;
}
