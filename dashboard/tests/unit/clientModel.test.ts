// The client admin page's data shaping against frpc v0.70's captured `/api/status` (tests/fixtures/frp-captures/).
import { describe, expect, it } from "vitest";
import captured from "../../../tests/fixtures/frp-captures/dashboard-api/frpc-api-status.json";
import { maskedSecrets, saveProblem, statusGroups } from "../../src/clientModel";

describe("statusGroups", () => {
  it("groups frpc's status by type in frp's order, by name within a type", () => {
    const g = statusGroups(captured);
    expect(g.map((x) => x.type)).toEqual(["tcp", "udp", "http"]);
    expect(g[0].proxies.map((p) => p.name)).toEqual(["clash", "web"]);
    expect(g[0].running).toBe(1);
    expect(g[0].proxies[0]).toEqual({
      name: "clash",
      type: "tcp",
      status: "start error",
      running: false,
      err: "port unavailable",
      local: "127.0.0.1:18081",
      plugin: "",
      remote: "",
      stored: false,
    });
    expect(g[2].proxies[0].remote).toBe("site.portway.test:18080");
  });

  it("keeps plugins and stored proxies, drops what is not a proxy", () => {
    const g = statusGroups({
      tcp: [
        { name: "files", type: "tcp", status: "running", err: "", local_addr: "", plugin: "static_file", remote_addr: "a:1", source: "store" },
        { type: "tcp" },
        null,
        "x",
      ],
      udp: [],
      odd: "not a list",
    });
    expect(g).toHaveLength(1);
    expect(g[0].proxies).toHaveLength(1);
    expect(g[0].proxies[0]).toMatchObject({ plugin: "static_file", local: "", stored: true, running: true });
    expect(statusGroups(null)).toEqual([]);
    expect(statusGroups([1, 2])).toEqual([]);
    expect(statusGroups({ zzz: [{ name: "b" }], tcp: [{ name: "a" }] }).map((x) => [x.type, x.proxies[0].status])).toEqual([
      ["tcp", "new"],
      ["zzz", "new"],
    ]);
  });
});

describe("saving the configuration", () => {
  it("counts the masked secrets, sends them back as they are, refuses an empty file", () => {
    const masked = 'auth.token = "<redacted>"\nwebServer.password = "<redacted>"\n';
    expect(maskedSecrets(masked)).toBe(2);
    expect(maskedSecrets("x = 1\n")).toBe(0);
    expect(saveProblem(masked)).toBe("");
    expect(saveProblem("  \n")).toContain("empty");
  });
});
