import { afterEach, describe, expect, it } from "vitest";
import { setLanguage } from "../../src/i18n";
import { fromProfile, toProfile, validate, sameProfile } from "../../src/form";
import { fromVisitors, newVisitor, toVisitors, validateVisitors, visitorField, visitorFieldName, visitorView, type VisitorForm } from "../../src/visitors";
import type { ConnStatus, Profile, VisitorDef, VisitorStatus } from "../../src/types";

const def = (v: Partial<VisitorDef> & { name: string }): VisitorDef => ({
  type: "stcp",
  serverName: "files",
  serverUser: "",
  bindAddr: "127.0.0.1",
  bindPort: 6000,
  enabled: true,
  fallbackTo: "",
  hasSecretKey: true,
  ...v,
});
const up: ConnStatus = { state: "connected", runId: "r", since: 0 };
const listening = (extra: Partial<VisitorStatus> = {}): VisitorStatus =>
  ({ state: "listening", localAddr: "127.0.0.1:6000", bytesIn: 0, bytesOut: 0, conns: 0, ...extra }) as VisitorStatus;

afterEach(() => setLanguage("en", "en-US"));

describe("visitor rows", () => {
  it("round-trip through the form; a rename carries the stored name", () => {
    const defs = [def({ name: "relay", bindPort: -1 }), def({ name: "p2p", type: "xtcp", fallbackTo: "relay", bindAddr: "127.0.0.2" })];
    const rows = fromVisitors(defs);
    expect(toVisitors(rows)).toEqual(defs);
    rows[1]!.name = "lab";
    expect(toVisitors(rows)[1]).toEqual({ ...defs[1], name: "lab", renamedFrom: "p2p" });
    // A new row has no stored name: nothing to move.
    const n = newVisitor(rows);
    expect(n.name).toBe("service-1");
    n.serverName = "x";
    n.bindPort = "7000";
    expect(toVisitors([n])[0]!.renamedFrom).toBeUndefined();
    // fallbackTo only travels with xtcp.
    rows[1]!.type = "stcp";
    expect(toVisitors(rows)[1]!.fallbackTo).toBe("");
  });

  it("validation names the field and the fix", () => {
    const rows = fromVisitors([def({ name: "a" }), def({ name: "b", bindPort: 6001 })]);
    expect(validateVisitors(rows)).toEqual({});
    const err = (mut: (r: VisitorForm[]) => void, field: Parameters<typeof visitorField>[1], idx: number) => {
      const rs = fromVisitors([def({ name: "a" }), def({ name: "b", bindPort: 6001 })]);
      mut(rs);
      return validateVisitors(rs)[visitorField(rs[idx]!.key, field)];
    };
    expect(err((r) => (r[1]!.name = "a"), "name", 1)).toContain("Another private service");
    expect(err((r) => (r[1]!.bindPort = "6000"), "bindPort", 1)).toBe("a uses this local port already");
    expect(err((r) => ((r[1]!.bindPort = "6000"), (r[1]!.type = "sudp")), "bindPort", 1)).toBeUndefined(); // UDP apart from TCP
    expect(err((r) => ((r[1]!.bindPort = "6000"), (r[1]!.enabled = false)), "bindPort", 1)).toBeUndefined();
    expect(err((r) => (r[0]!.bindPort = "0"), "bindPort", 0)).toContain("1 to 65535");
    expect(err((r) => ((r[0]!.bindPort = "-1"), (r[0]!.type = "xtcp")), "bindPort", 0)).toContain("no port (-1)");
    expect(err((r) => (r[0]!.serverName = ""), "serverName", 0)).toContain("owner tells you");
    expect(err((r) => (r[0]!.serverUser = "al ice"), "serverUser", 0)).toContain("letters");
    expect(err((r) => (r[0]!.hasSecretKey = false), "secretKey", 0)).toContain("secret key");
    expect(err((r) => ((r[1]!.type = "xtcp"), (r[1]!.fallbackTo = "zz")), "fallbackTo", 1)).toContain("no private service");
    expect(err((r) => ((r[1]!.type = "xtcp"), (r[1]!.fallbackTo = "a"), (r[0]!.enabled = false)), "fallbackTo", 1)).toContain("a is off");
    expect(visitorFieldName("visitor.12.bindPort")).toBe("local port");
    expect(visitorFieldName("proxy.12.localPort")).toBeNull();
  });

  it("the state: off, not connected, no key, via server, peer to peer, fallback with why, failed with why", () => {
    const row = { enabled: true, type: "stcp" as const, bindPort: "6000", hasSecretKey: true };
    expect(visitorView({ ...row, enabled: false }, listening(), up).state).toBe("off");
    expect(visitorView(row, undefined, { state: "disconnected" }).label).toBe("Not connected");
    expect(visitorView(row, undefined, { state: "error", reason: "x", retryInMs: null }).state).toBe("disconnected");
    expect(visitorView({ ...row, hasSecretKey: false }, undefined, up).state).toBe("no-secret");
    expect(visitorView(row, { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 }, { state: "connecting", attempt: 2 }).state).toBe("waiting");
    const via = visitorView(row, listening(), up);
    expect([via.label, via.localAddr]).toEqual(["Via server", "127.0.0.1:6000"]);
    const failed = visitorView(row, listening({ lastError: "auth failed" }), up);
    expect([failed.state, failed.label, failed.localAddr]).toEqual(["failed", "Failed: auth failed", "127.0.0.1:6000"]);
    const x = { ...row, type: "xtcp" as const };
    expect(visitorView(x, listening(), up).label).toBe("Ready");
    expect(visitorView(x, listening({ path: "peer to peer" }), up).label).toBe("Peer to peer");
    const fb = visitorView(x, listening({ path: "via server (fallbackTo relay)", lastError: "STUN timeout" }), up);
    expect([fb.state, fb.detail]).toEqual(["fallback", "No peer-to-peer tunnel, so connections go through the server: STUN timeout"]);
    expect(visitorView(x, listening({ lastError: "no candidate address" }), up).state).toBe("failed");
    const port = visitorView(row, { state: "error", reason: "cannot listen on 127.0.0.1:6000: in use", bytesIn: 0, bytesOut: 0, conns: 0 }, up);
    expect([port.state, port.localAddr]).toEqual(["failed", null]);
    expect(visitorView({ ...row, bindPort: "-1" }, undefined, up).state).toBe("no-port");
  });

  it("are part of the profile form: validated with it and compared without computed flags", () => {
    const p: Profile = {
      server: { addr: "a", port: 7000, protocol: "tcp", tls: true, user: "", tcpMux: true },
      auth: { method: "token", tokenEndpointUrl: "", clientId: "", audience: "", scope: "", hasSecret: true },
      proxies: [],
      visitors: [def({ name: "nas" })],
      options: { connectOnLaunch: false, startMinimized: false, launchAtLogin: false },
    };
    const f = fromProfile(p);
    expect(validate(f)).toEqual({});
    expect(sameProfile(toProfile(f, true), p)).toBe(true);
    expect(sameProfile(toProfile(f, true), { ...p, visitors: [{ ...p.visitors![0]!, hasSecretKey: false }] })).toBe(true);
    f.visitors[0]!.serverName = "";
    expect(Object.keys(validate(f))).toEqual([visitorField(f.visitors[0]!.key, "serverName")]);
  });

  it("speak the window's language", () => {
    setLanguage("zh-CN", "zh-CN");
    const row = { enabled: true, type: "stcp" as const, bindPort: "6000", hasSecretKey: true };
    expect(visitorView(row, listening(), up).label).toBe("经服务器中转");
    // The engine's English words are not in the Chinese label: a lead-in, the words apart (shown under it).
    const failed = visitorView(row, listening({ lastError: "auth failed" }), up);
    expect([failed.label, failed.original, failed.state]).toEqual(["失败", "auth failed", "failed"]);
    const rows = fromVisitors([def({ name: "a", serverName: "" })]);
    expect(validateVisitors(rows)[visitorField(rows[0]!.key, "serverName")]).toContain("代理名称");
    expect(visitorFieldName("visitor.1.bindPort")).toBe("本地端口");
  });
});
