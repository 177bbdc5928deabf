// A stand-in for the Tauri v2 IPC, injected into the page before its scripts (page.addInitScript).
// It implements what @tauri-apps/api v2 uses: `__TAURI_INTERNALS__.invoke` / `transformCallback` and the
// event plugin (`plugin:event|listen` with a callback id, `unregisterListener`). Commands answer from a small
// stateful backend shaped by the contract; tests steer it through `window.__mock`.
//
// `installTauriMock` is serialised with toString(): it must not reference anything outside its own body.
import type { KeychainStatus, LogLine, Profile, ProfileSummary, Status, TokenInfo } from "../../src/types";

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
  /** More profiles after the first ("default", named `firstName`, whose settings are `profile`). */
  others?: { id: string; name: string; profile: Profile; status: Status }[];
  firstName?: string;
  /** The stored language choice ("auto" when absent). */
  language?: string;
}

export interface MockHandle {
  calls: { cmd: string; args: Record<string, unknown> | undefined }[];
  state: MockSeed & {
    secret: string | null;
    proxyPasswords: Record<string, string>;
    /** Secret keys stored through the mock, by "proxy:NAME" / "visitor:NAME". */
    secretKeys: Record<string, string>;
    /** Every profile (the first's `profile`/`status`/`secret` mirror the fields above). */
    list: { id: string; name: string; profile: Profile; status: Status; secret: string | null }[];
  };
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
  const state = {
    ...seed,
    secret: seed.profile.auth.hasSecret ? "stored-secret" : null,
    proxyPasswords: {} as Record<string, string>,
    secretKeys: {} as Record<string, string>,
    list: [] as { id: string; name: string; profile: Profile; status: Status; secret: string | null }[],
  };
  // The first profile is the seed's own fields (older tests steer them directly); the others live in `list`.
  const first = { id: "default", name: seed.firstName ?? "My server" };
  for (const o of seed.others ?? []) state.list.push({ ...o, secret: o.profile.auth.hasSecret ? "stored-secret" : null });
  type Slot = { profile: Profile; status: Status; secret: string | null };
  const slot = (id: unknown): Slot => {
    if (id === undefined || id === first.id) return state;
    const o = state.list.find((x) => x.id === id);
    if (!o) throw { code: "unknown_profile", message: `there is no profile with id "${String(id)}"` };
    return o;
  };
  const summaries = (): ProfileSummary[] => [
    { id: first.id, name: first.name, status: { ...state.status, profileId: first.id } },
    ...state.list.map((o) => ({ id: o.id, name: o.name, status: { ...o.status, profileId: o.id } })),
  ];
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
    const id = (args as { id?: string } | undefined)?.id;
    switch (cmd) {
      case "list_profiles":
        return clone(summaries());
      case "add_profile": {
        const name = (args as { name: string }).name;
        const taken = (n: string) => summaries().some((p) => p.name === n);
        let free = name;
        for (let i = 2; taken(free); i++) free = `${name} ${i}`;
        const p = clone(seed.profile);
        p.server.addr = "";
        p.proxies = [];
        p.auth.hasSecret = false;
        const o = { id: `p${nextId++}`, name: free, profile: p, status: { conn: { state: "disconnected" }, proxies: {} } as Status, secret: null };
        state.list.push(o);
        return { id: o.id, name: o.name, status: clone(o.status) };
      }
      case "rename_profile": {
        const a = args as { id: string; name: string };
        if (summaries().some((p) => p.id !== a.id && p.name === a.name)) throw { code: "invalid_input", message: `a profile named "${a.name}" exists already` };
        if (a.id === first.id) first.name = a.name;
        else slot(a.id);
        const o = state.list.find((x) => x.id === a.id);
        if (o) o.name = a.name;
        return null;
      }
      case "delete_profile": {
        slot(id);
        if (id === first.id) throw { code: "invalid_input", message: "mock: the first profile stays" };
        state.list = state.list.filter((x) => x.id !== id);
        return null;
      }
      case "plugin:opener|open_url":
        return null;
      case "get_language":
        return state.language ?? "auto";
      case "set_language":
        state.language = (args as { language: string }).language;
        return null;
      case "connect_all":
      case "disconnect_all":
        return null;
      case "get_profile":
        return clone(slot(id).profile);
      case "save_profile": {
        const s = slot(id);
        const p = clone((args as { profile: Profile }).profile);
        p.auth.hasSecret = s.secret !== null;
        s.profile = p;
        return clone(p);
      }
      case "set_secret": {
        if (!state.keychain.available) throw { code: "keychain_unavailable", message: `the system keychain is not available (${state.keychain.detail ?? ""})` };
        const s = slot(id);
        s.secret = (args as { secret: string }).secret;
        s.profile.auth.hasSecret = true;
        return null;
      }
      case "set_proxy_password": {
        if (!state.keychain.available) throw { code: "keychain_unavailable", message: `the system keychain is not available (${state.keychain.detail ?? ""})` };
        const a = args as { name: string; password: string };
        state.proxyPasswords[a.name] = a.password;
        const row = state.profile.proxies.find((p) => p.name === a.name);
        if (row) row.hasHttpPassword = true;
        return null;
      }
      case "set_proxy_secret_key":
      case "set_visitor_secret_key": {
        if (!state.keychain.available) throw { code: "keychain_unavailable", message: `the system keychain is not available (${state.keychain.detail ?? ""})` };
        const a = args as { name: string; secret: string };
        const kind = cmd === "set_proxy_secret_key" ? "proxy" : "visitor";
        state.secretKeys[`${kind}:${a.name}`] = a.secret;
        const rows: { name: string; hasSecretKey?: boolean }[] = kind === "proxy" ? slot(id).profile.proxies : (slot(id).profile.visitors ?? []);
        const row = rows.find((r) => r.name === a.name);
        if (row) row.hasSecretKey = true;
        return null;
      }
      case "set_visitor_enabled": {
        const a = args as { name: string; enabled: boolean };
        const s = slot(id);
        const v = (s.profile.visitors ?? []).find((x) => x.name === a.name);
        if (!v) throw { code: "invalid_input", message: `there is no visitor named "${a.name}" in this profile` };
        v.enabled = a.enabled;
        return clone(s.profile);
      }
      case "clear_proxy_password":
        delete state.proxyPasswords[(args as { name: string }).name];
        return null;
      case "clear_secret": {
        const s = slot(id);
        s.secret = null;
        s.profile.auth.hasSecret = false;
        return null;
      }
      case "keychain_status":
        return clone(state.keychain);
      case "page_start": {
        // The same answers the single commands give (their seeded failures and replies included).
        const profiles = handle("list_profiles", undefined) as ProfileSummary[];
        const first = profiles[0]?.id;
        return {
          language: handle("get_language", undefined),
          profiles,
          profile: first === undefined ? null : handle("get_profile", { id: first }),
          status: first === undefined ? null : handle("get_status", { id: first }),
          logs: handle("get_logs", undefined),
          keychain: handle("keychain_status", undefined),
        };
      }
      case "connect":
      case "disconnect":
        return null;
      case "get_status":
        return clone({ ...slot(id).status, profileId: id ?? first.id });
      case "test_sign_in":
        return clone(state.tokenInfo);
      case "get_logs":
        return clone(state.logs);
      case "import_frpc":
        return { id: id ?? first.id, profile: clone(id ? slot(id).profile : state.profile), skipped: [] };
      case "export_frpc":
        slot(id);
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
      if (event === "status-changed") {
        const st = payload as Status;
        const o = state.list.find((x) => x.id === st.profileId);
        if (o) o.status = clone(st);
        else state.status = clone(st);
      }
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
