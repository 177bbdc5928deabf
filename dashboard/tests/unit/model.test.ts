// Data shaping against frps v0.70's captured answers (tests/fixtures/frp-captures/dashboard-api/).
import { describe, expect, it } from "vitest";
import clientsJson from "../../../tests/fixtures/frp-captures/dashboard-api/frps-api-clients.json";
import serverInfoJson from "../../../tests/fixtures/frp-captures/dashboard-api/frps-api-serverinfo.json";
import trafficJson from "../../../tests/fixtures/frp-captures/dashboard-api/frps-api-traffic-web.json";
import v2Offline from "../../../tests/fixtures/frp-captures/dashboard-api/frps-api-v2-proxies-offline.json";
import v2Proxies from "../../../tests/fixtures/frp-captures/dashboard-api/frps-api-v2-proxies.json";
import { apiUrl } from "../../src/api";
import { clientRows, groupByType, proxyRows, serverSummary, trafficSeries } from "../../src/model";
import type { V2ProxyJson } from "../../src/types";

describe("proxyRows / groupByType", () => {
  const rows = proxyRows(v2Proxies.data.items as V2ProxyJson[]);

  it("reads name, type, status, endpoint and today's traffic from /api/v2/proxies", () => {
    const web = rows.find((r) => r.name === "web");
    expect(web).toMatchObject({ type: "tcp", online: true, endpoint: ":16001", todayIn: 39, todayOut: 39, curConns: 0 });
    expect(web?.lastStartAt).toBe(1795974405);
    expect(web?.lastCloseAt).toBeNull();
    expect(rows.find((r) => r.name === "site")).toMatchObject({ type: "http", endpoint: "site.portway.test", curConns: 1 });
  });

  it("groups in frps's type order, online first", () => {
    const groups = groupByType(rows);
    expect(groups.map((g) => g.type)).toEqual(["tcp", "udp", "http"]);
    const mixed = groupByType(proxyRows(v2Offline.data.items as V2ProxyJson[]));
    const tcp = mixed.find((g) => g.type === "tcp");
    expect(tcp?.online).toBe(0);
    expect(tcp?.proxies.every((p) => !p.online && p.lastCloseAt !== null)).toBe(true);
    // An empty spec (an offline proxy's) has no endpoint.
    expect(tcp?.proxies[0]?.endpoint).toBe("");
  });

  it("drops nameless items and tolerates missing fields", () => {
    const r = proxyRows([{}, { name: "x" }, { name: "y", spec: { type: "udp", udp: { remotePort: 0 } }, status: { phase: "online" } }]);
    expect(r).toHaveLength(2);
    expect(r[0]).toMatchObject({ name: "x", type: "unknown", online: false, todayIn: 0, endpoint: "" });
    expect(r[1]).toMatchObject({ type: "udp", online: true, endpoint: "" });
    expect(groupByType([...r, { ...r[0]!, name: "z", type: "zzz" }]).map((g) => g.type)).toEqual(["udp", "unknown", "zzz"]);
  });
});

describe("clientRows", () => {
  it("joins Portway's identity by key; token logins have none", () => {
    const key = clientsJson[0]!.key;
    const rows = clientRows(
      [...clientsJson, { key: "k2", hostname: "a-host", online: false }],
      [{ key, auth: { subject: "alice", oidcClientID: "portway-cli", tokenExpiresAt: 1795978005 }, policyRule: "ops" }],
    );
    expect(rows[0]).toMatchObject({ key, hostname: "vm", online: true, wireProtocol: "v1", version: "0.70.0", address: "127.0.0.1" });
    expect(rows[0]).toMatchObject({ subject: "alice", oidcClientID: "portway-cli", tokenExpiresAt: 1795978005, policyRule: "ops" });
    expect(rows[1]).toMatchObject({ key: "k2", online: false, subject: "", tokenExpiresAt: null, policyRule: "" });
  });

  it("works against frps, which has no Portway identities", () => {
    expect(clientRows(clientsJson, [])[0]?.subject).toBe("");
  });
});

describe("serverSummary", () => {
  it("shows the version, totals and the ports that are on", () => {
    const s = serverSummary(serverInfoJson);
    expect(s).toMatchObject({ version: "0.70.0", totalIn: 67, totalOut: 67, curConns: 1, clients: 1, proxies: 3 });
    expect(s.facts).toContainEqual(["Bind port", "17000"]);
    expect(s.facts).toContainEqual(["HTTP port", "18080"]);
    expect(s.facts.map(([k]) => k)).not.toContain("HTTPS port");
    expect(s.facts).toContainEqual(["Heartbeat timeout", "off (tcpMux)"]);
    expect(serverSummary({}).version).toBe("unknown");
  });
});

describe("trafficSeries", () => {
  it("turns today-first arrays into an oldest-first week", () => {
    const t = trafficSeries(trafficJson);
    expect(t.name).toBe("web");
    expect(t.days).toHaveLength(7);
    expect(t.days[6]).toEqual({ label: "today", in: 39, out: 39 });
    expect(t.days[0]?.label).toBe("6 d ago");
    expect([t.totalIn, t.totalOut]).toEqual([39, 39]);
  });

  it("pads short or broken arrays with zeros", () => {
    const t = trafficSeries({ name: "n", trafficIn: [5, 7], trafficOut: [Number.NaN] as number[] });
    expect(t.days.map((d) => d.in)).toEqual([0, 0, 0, 0, 0, 7, 5]);
    expect(t.totalOut).toBe(0);
  });
});

describe("apiUrl", () => {
  it("resolves against the page under /static/ and drops credentials", () => {
    expect(apiUrl("serverinfo", "http://admin:pw@127.0.0.1:7500/static/")).toBe("http://127.0.0.1:7500/api/serverinfo");
    expect(apiUrl("traffic/a%20b", "https://h.example/static/index.html")).toBe("https://h.example/api/traffic/a%20b");
  });
});
