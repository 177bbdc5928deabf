import { describe, expect, it } from "vitest";
import {
  connView,
  engineRuns,
  explainAuthError,
  expiryLabel,
  formatClock,
  formatLogLine,
  humanBytes,
  proxyBadge,
  publicAddrs,
  relativeIn,
  secondsLeft,
  trafficLabel,
} from "../../src/format";
import type { ProxyStatus } from "../../src/types";

const fmt = { locale: "en-GB", timeZone: "UTC" };
const NOW = Date.UTC(2025, 4, 6, 14, 30, 0); // 2025-05-06 14:30:00 UTC

describe("connection labels", () => {
  it("disconnected", () => expect(connView({ state: "disconnected" }, NOW, null, fmt)).toEqual({ label: "Disconnected", tone: "idle", action: "connect" }));
  it("connecting shows the attempt and offers Disconnect (cancels)", () =>
    expect(connView({ state: "connecting", attempt: 2 }, NOW, null, fmt)).toEqual({ label: "Connecting (attempt 2)", tone: "busy", action: "disconnect" }));
  it("connected since local time", () => {
    const v = connView({ state: "connected", runId: "r1", since: Date.UTC(2025, 4, 6, 14, 3, 12) }, NOW, null, fmt);
    expect(v).toEqual({ label: "Connected since 14:03:12", tone: "ok", action: "disconnect" });
  });
  it("connected since another day shows the date", () => {
    const v = connView({ state: "connected", runId: "r1", since: Date.UTC(2025, 4, 5, 23, 0, 0) }, NOW, null, fmt);
    expect(v.label).toBe("Connected since 5 May 2025 23:00:00");
  });
  it("error with a retry counts down and still offers Disconnect", () => {
    const c = { state: "error" as const, reason: "connection refused", retryInMs: 5000 };
    expect(connView(c, NOW, null, fmt)).toEqual({ label: "Error: connection refused — retrying in 5s", tone: "bad", action: "disconnect" });
    expect(connView(c, NOW + 2100, NOW + 5000, fmt).label).toBe("Error: connection refused — retrying in 3s");
    expect(connView(c, NOW + 9000, NOW + 5000, fmt).label).toBe("Error: connection refused — retrying in 0s");
  });
  it("error that gave up offers Connect", () =>
    expect(connView({ state: "error", reason: "invalid_client", retryInMs: null }, NOW, null, fmt)).toEqual({
      label: "Error: invalid_client — gave up",
      tone: "bad",
      action: "connect",
    }));
  it("secondsLeft rounds up and never goes negative", () => {
    expect(secondsLeft(NOW + 1, NOW)).toBe(1);
    expect(secondsLeft(NOW - 5, NOW)).toBe(0);
  });
  it("formatClock same day has no date", () => expect(formatClock(NOW, NOW, fmt)).toBe("14:30:00"));
});

describe("proxy badges", () => {
  const c = { bytesIn: 1536, bytesOut: 0, conns: 1 };
  const cases: [ProxyStatus, string, string][] = [
    [{ state: "idle", ...c }, "Waiting", "idle"],
    [{ state: "pending", ...c }, "Pending", "busy"],
    [{ state: "running", remoteAddr: "tunnel.example.com:6000", ...c }, "Running at tunnel.example.com:6000", "ok"],
    [{ state: "error", reason: "port 6000 is not allowed", ...c }, "Refused: port 6000 is not allowed", "bad"],
  ];
  it.each(cases)("%j", (s, label, tone) => {
    const b = proxyBadge(s, true);
    expect(b.label).toBe(label);
    expect(b.tone).toBe(tone);
  });
  it("the error detail carries the server's reason verbatim", () =>
    expect(proxyBadge({ state: "error", reason: "proxy [web] already exists", ...c }, true).detail).toContain("proxy [web] already exists"));
  it("no status yet while connecting", () => expect(proxyBadge(undefined, true).label).toBe("Waiting"));
  it("one state and label for a proxy without an engine: new (no status) and after Disconnect (idle) alike", () => {
    const fresh = proxyBadge(undefined, true, engineRuns({ state: "disconnected" }));
    const after = proxyBadge({ state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 }, true, engineRuns({ state: "disconnected" }));
    expect(fresh).toEqual(after);
    expect(fresh.label).toBe("Not running");
    expect(proxyBadge(undefined, true, engineRuns({ state: "error", reason: "x", retryInMs: null })).label).toBe("Not running");
    expect(engineRuns({ state: "error", reason: "x", retryInMs: 1000 })).toBe(true);
  });
  it("running shows where to connect, not the bare port", () => {
    const s: ProxyStatus = { state: "running", remoteAddr: ":38247", ...c };
    const where = publicAddrs("tcp", ":38247", "tunnel.example.com");
    expect(where).toEqual([{ text: "tunnel.example.com:38247" }]);
    expect(proxyBadge(s, true, true, where).label).toBe("Running at tunnel.example.com:38247");
  });
  it("disabled wins", () => expect(proxyBadge(cases[2]![0], false)).toMatchObject({ label: "Disabled", tone: "off" }));
  it("traffic", () => {
    expect(trafficLabel({ state: "running", remoteAddr: "x", bytesIn: 1536, bytesOut: 5 * 1024 * 1024, conns: 2 })).toBe("in 1.5 KiB · out 5 MiB · 2 conns");
    expect(trafficLabel({ state: "idle", bytesIn: 0, bytesOut: 0, conns: 1 })).toBe("in 0 B · out 0 B · 1 conn");
    expect(trafficLabel(undefined)).toBe("");
  });
});

describe("public addresses", () => {
  it("tcp/udp: the server address with the remote port (IPv6 bracketed, an unspecified host replaced)", () => {
    expect(publicAddrs("udp", ":6053", "203.0.113.7")).toEqual([{ text: "203.0.113.7:6053" }]);
    expect(publicAddrs("tcp", "0.0.0.0:6000", "2001:db8::1")).toEqual([{ text: "[2001:db8::1]:6000" }]);
    expect(publicAddrs("tcp", "198.51.100.2:6000", "tunnel.example.com")).toEqual([{ text: "198.51.100.2:6000" }]);
  });
  it("http/https: one URL per route, duplicates once (frps repeats a domain per location)", () => {
    expect(publicAddrs("http", "web.portway.test:18080,web.portway.test:18080", "x")).toEqual([
      { text: "http://web.portway.test:18080", url: "http://web.portway.test:18080" },
    ]);
    expect(publicAddrs("https", "secure.example.com", "x")).toEqual([{ text: "https://secure.example.com", url: "https://secure.example.com" }]);
    expect(publicAddrs("http", "a.example.com:8080,b.example.com:8080", "x").map((a) => a.text)).toEqual([
      "http://a.example.com:8080",
      "http://b.example.com:8080",
    ]);
  });
  it("tcpmux: the HTTP CONNECT address", () => expect(publicAddrs("tcpmux", "mux.portway.test:18090", "x")).toEqual([{ text: "mux.portway.test:18090" }]));
});

describe("auth errors in plain words", () => {
  it.each([
    ["the provider does not accept client ID \"x\" (invalid_client: Client authentication failed): check auth.oidc.clientID and auth.oidc.clientSecret", "invalid_client", ["Client ID", "Client secret"]],
    ["the provider rejected the client secret, or its policy denies this client (invalid_grant: The provided authorization grant or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request): check auth.oidc.clientSecret", "invalid_grant", ["Client secret"]],
    ["the provider refused the token request: unauthorized_client: not allowed", "unauthorized_client", ["client-credentials"]],
    ["the provider refused the token request: invalid_scope", "invalid_scope", ["Scope"]],
    ["cannot reach the token endpoint https://auth.example.com/t: connection refused", "unreachable", ["Token endpoint URL"]],
  ])("%s", (msg, code, words) => {
    const e = explainAuthError(msg)!;
    expect(e.code).toBe(code);
    for (const w of words) expect(e.explanation).toContain(w);
    expect(e.explanation).not.toContain("auth.oidc");
  });
  it("engine errors it knows are explained, others are left as they are", () => {
    expect(explainAuthError("connecting to 127.0.0.1:7000: connection refused (os error 111)")?.code).toBe("serverRefused");
    expect(explainAuthError("remote port 6000 cannot be opened on the server: Address in use (port already used? choose another remotePort)")?.code).toBe("portTaken");
    expect(explainAuthError("something else went wrong")).toBeNull();
  });
});

describe("one time format", () => {
  it("the header, the expiry and the log lines share the locale's clock (12-hour in en-US, 24-hour in en-GB)", () => {
    const ts = Date.UTC(2025, 4, 6, 18, 22, 35, 7);
    const us = { locale: "en-US", timeZone: "UTC" };
    expect(formatClock(ts, ts, us)).toBe("06:22:35 PM");
    expect(formatLogLine({ ts, level: "INFO", target: "", message: "m" }, us)).toBe("06:22:35.007 PM INFO  m");
    expect(formatClock(ts, ts, fmt)).toBe("18:22:35");
    expect(formatLogLine({ ts, level: "INFO", target: "", message: "m" }, fmt)).toBe("18:22:35.007 INFO  m");
  });
});

describe("humanBytes", () => {
  it.each([
    [0, "0 B"],
    [1, "1 B"],
    [1023, "1023 B"],
    [1024, "1 KiB"],
    [1536, "1.5 KiB"],
    [100 * 1024, "100 KiB"],
    [123.4 * 1024, "123 KiB"],
    [1024 * 1024, "1 MiB"],
    [10.25 * 1024 ** 3, "10.3 GiB"],
    [2 * 1024 ** 4, "2 TiB"],
    [-5, "0 B"],
    [Number.NaN, "0 B"],
  ])("%d → %s", (n, s) => expect(humanBytes(n)).toBe(s));
});

describe("token expiry", () => {
  it.each([
    [300, "in 5 min"],
    [45, "in 45 s"],
    [3599, "in 60 min"],
    [7200, "in 2 h"],
    [7500, "in 2 h 5 min"],
    [0, "expired"],
    [-3, "expired"],
  ])("%d s → %s", (s, label) => expect(relativeIn(s)).toBe(label));
  it("local time and relative", () =>
    expect(expiryLabel({ expiresAt: NOW / 1000 + 300, expiresIn: 300 }, NOW, fmt)).toBe("14:35:00 (in 5 min)"));
});

describe("log lines", () => {
  it("formats time, padded level, target and message", () =>
    expect(formatLogLine({ ts: Date.UTC(2025, 0, 1, 9, 5, 7, 42), level: "INFO", target: "portway_client::control", message: "logged in" }, fmt)).toBe(
      "09:05:07.042 INFO  portway_client::control: logged in",
    ));
  it("omits an empty target", () => expect(formatLogLine({ ts: Date.UTC(2025, 0, 1), level: "ERROR", target: "", message: "x" }, fmt)).toBe("00:00:00.000 ERROR x"));
});
