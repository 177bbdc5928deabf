// Connection header, Connect/Disconnect, proxy badges.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, Harness, PROFILE, calls, emit, seed, tid } from "./harness";
import type { Status } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const localTime = (ms: number) =>
  new Date(ms).toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

describe("connection state", () => {
  it("renders every state from status-changed events", async () => {
    const page = await hx.open();
    const state = page.locator(tid("conn-state"));
    const button = page.locator(tid("connect-button"));
    await expect(state.textContent()).resolves.toBe("Disconnected");
    await expect(button.textContent()).resolves.toBe("Connect");
    expect(await page.evaluate(() => window.__mock.listeners("status-changed"))).toBe(1);

    await emit(page, "status-changed", { conn: { state: "connecting", attempt: 2 }, proxies: {} });
    await expect(state.textContent()).resolves.toBe("Connecting (attempt 2)");
    // Disconnect stays available while connecting: it cancels the attempt.
    await expect(button.textContent()).resolves.toBe("Disconnect");
    await expect(button.isEnabled()).resolves.toBe(true);

    const since = Date.now() - 60_000;
    await emit(page, "status-changed", { conn: { state: "connected", runId: "4f2a", since }, proxies: {} });
    await expect(state.textContent()).resolves.toBe(`Connected since ${localTime(since)}`);
    await expect(button.textContent()).resolves.toBe("Disconnect");

    await emit(page, "status-changed", { conn: { state: "error", reason: "connection refused (os error 111)", retryInMs: 5000 }, proxies: {} });
    await expect(state.textContent()).resolves.toMatch(/^Error: connection refused \(os error 111\) — retrying in [45]s$/);
    await expect(button.textContent()).resolves.toBe("Disconnect");
    // The countdown ticks between events.
    await page.waitForFunction(() => /retrying in [0-3]s/.test(document.querySelector('[data-testid="conn-state"]')!.textContent!), null, { timeout: 5000 });

    await emit(page, "status-changed", { conn: { state: "error", reason: "invalid_client: Client authentication failed", retryInMs: null }, proxies: {} });
    await expect(state.textContent()).resolves.toBe("Error: invalid_client: Client authentication failed — gave up");
    await expect(button.textContent()).resolves.toBe("Connect");

    await emit(page, "status-changed", { conn: { state: "disconnected" }, proxies: {} });
    await expect(state.textContent()).resolves.toBe("Disconnected");
  });

  it("shows the state from get_status at start", async () => {
    const since = Date.now() - 5000;
    const page = await hx.open(seed({ status: { conn: { state: "connected", runId: "r", since }, proxies: {} } }));
    await expect(page.locator(tid("conn-state")).textContent()).resolves.toBe(`Connected since ${localTime(since)}`);
  });

  it("Connect invokes connect; the Connected event turns the button into Disconnect; Disconnect invokes disconnect", async () => {
    const page = await hx.open();
    await page.click(tid("connect-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "connect"));
    // Nothing was edited, so nothing was saved first.
    expect(await calls(page, "save_profile")).toHaveLength(0);

    const since = Date.now();
    const status: Status = {
      conn: { state: "connected", runId: "4f2a", since },
      proxies: {
        web: { state: "running", remoteAddr: "tunnel.example.com:6000", bytesIn: 1536, bytesOut: 5 * 1024 * 1024, conns: 2 },
        dns: { state: "error", reason: "port 6053 is not in allowPorts", bytesIn: 0, bytesOut: 0, conns: 0 },
      },
    };
    await emit(page, "status-changed", status);
    await expect(page.locator(tid("connect-button")).textContent()).resolves.toBe("Disconnect");
    await expect(page.locator(tid("conn-state")).textContent()).resolves.toBe(`Connected since ${localTime(since)}`);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "connected.png"), fullPage: true });

    await page.click(tid("connect-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "disconnect"));
  });

  it("Connect saves unsaved edits first, then connects", async () => {
    const page = await hx.open();
    await page.fill(tid("server-port"), "7443");
    await page.click(tid("connect-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "connect"));
    const cmds = (await calls(page)).map((c) => c.cmd).filter((c) => ["save_profile", "connect"].includes(c));
    expect(cmds).toEqual(["save_profile", "connect"]);
    const saved = (await calls(page, "save_profile"))[0]!.args!.profile as { server: { port: number } };
    expect(saved.server.port).toBe(7443);
  });

  it("a failing command shows its message", async () => {
    const page = await hx.open(seed({ failures: { connect: { code: "no_secret", message: "No client secret is stored: type it in Authentication and Save." } } }));
    await page.click(tid("connect-button"));
    await expect(page.locator(tid("toast")).first().textContent()).resolves.toContain("No client secret is stored: type it in Authentication and Save.");
    await expect(page.locator(tid("connect-button")).isEnabled()).resolves.toBe(true);
  });
});

describe("proxy status", () => {
  it("running and refused badges with the server's reason, traffic humanised", async () => {
    const page = await hx.open();
    await expect(page.locator(tid("proxy-status-web")).textContent()).resolves.toBe("Not running");
    await emit(page, "status-changed", {
      conn: { state: "connected", runId: "r", since: Date.now() },
      proxies: {
        web: { state: "running", remoteAddr: "tunnel.example.com:6000", bytesIn: 1536, bytesOut: 5 * 1024 * 1024, conns: 2 },
        dns: { state: "error", reason: "port 6053 is not in allowPorts", bytesIn: 0, bytesOut: 0, conns: 0 },
      },
    } satisfies Status);
    await expect(page.locator(tid("proxy-status-web")).textContent()).resolves.toBe("Running at tunnel.example.com:6000");
    await expect(page.locator(tid("proxy-traffic-web")).textContent()).resolves.toBe("in 1.5 KiB · out 5 MiB · 2 conns");
    await expect(page.locator(tid("proxy-status-dns")).textContent()).resolves.toBe("Refused: port 6053 is not in allowPorts");
    await expect(page.locator(tid("proxy-status-dns")).getAttribute("data-tone")).resolves.toBe("bad");

    for (const state of ["idle", "pending"] as const) {
      await emit(page, "status-changed", { conn: { state: "connecting", attempt: 1 }, proxies: { web: { state, bytesIn: 0, bytesOut: 0, conns: 0 } } });
      await expect(page.locator(tid("proxy-status-web")).textContent()).resolves.toBe(state === "idle" ? "Waiting" : "Pending");
    }
  });

  it("a disabled proxy says so", async () => {
    const page = await hx.open();
    await page.locator(`${tid("proxy-row-dns")} ${tid("proxy-enabled")}`).uncheck();
    await expect(page.locator(tid("proxy-status-dns")).textContent()).resolves.toBe("Disabled");
  });
});

describe("where to connect", () => {
  it("tcp shows the server address with the remote port and copies it; http shows the public URL, which opens in the browser", async () => {
    const p = structuredClone(PROFILE);
    p.proxies.push({ ...p.proxies[0]!, name: "site", type: "http", remotePort: 0, customDomains: ["app.example.com"] });
    const page = await hx.open(seed({ profile: p }));
    await emit(page, "status-changed", {
      conn: { state: "connected", runId: "r", since: Date.now() },
      proxies: {
        web: { state: "running", remoteAddr: ":38247", bytesIn: 0, bytesOut: 0, conns: 0 },
        site: { state: "running", remoteAddr: "app.example.com:8080", bytesIn: 0, bytesOut: 0, conns: 0 },
      },
    } satisfies Status);
    await expect(page.locator(tid("proxy-status-web")).textContent()).resolves.toBe("Running at tunnel.example.com:38247");
    await expect(page.locator(tid("proxy-addr-web")).textContent()).resolves.toBe("tunnel.example.com:38247");
    await page.click(tid("proxy-copy-web"));
    await expect.poll(() => page.evaluate(() => window.__mock.copied)).toEqual(["tunnel.example.com:38247"]);
    await expect(page.locator(tid("proxy-addr-site")).textContent()).resolves.toBe("http://app.example.com:8080");
    await page.click(tid("proxy-copy-site"));
    await expect.poll(() => page.evaluate(() => window.__mock.copied.at(-1))).toBe("http://app.example.com:8080");
    // The URL is a link: clicking it asks the OS browser (the opener plugin) and the page stays where it is.
    await expect(page.locator(tid("proxy-addr-site")).evaluate((e) => e.tagName)).resolves.toBe("A");
    await expect(page.locator(tid("proxy-addr-web")).evaluate((e) => e.tagName)).resolves.toBe("CODE");
    const before = page.url();
    await page.click(tid("proxy-addr-site"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "plugin:opener|open_url"));
    expect((await calls(page, "plugin:opener|open_url"))[0]!.args).toEqual({ url: "http://app.example.com:8080" });
    expect(page.url()).toBe(before);
    // Disconnected: the address goes away.
    await emit(page, "status-changed", { conn: { state: "disconnected" }, proxies: { web: { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 } } });
    await expect(page.locator(tid("proxy-addr-web")).count()).resolves.toBe(0);
  });

  it("a proxy after Disconnect and a newly added one show the same state and label", async () => {
    const page = await hx.open();
    await page.click(tid("add-proxy"));
    // What the backend sends after Disconnect: the known proxies idle, the new one absent.
    await emit(page, "status-changed", {
      conn: { state: "disconnected" },
      proxies: { web: { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 }, dns: { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 } },
    });
    const web = page.locator(tid("proxy-status-web"));
    const fresh = page.locator(tid("proxy-status-proxy-1"));
    await expect(web.textContent()).resolves.toBe("Not running");
    await expect(fresh.textContent()).resolves.toBe("Not running");
    await expect(web.getAttribute("title")).resolves.toBe(await fresh.getAttribute("title"));
    await expect(web.getAttribute("data-tone")).resolves.toBe(await fresh.getAttribute("data-tone"));
  });

  it("a refused login explains the provider's error code with the form's fields", async () => {
    const page = await hx.open();
    const reason = "the provider does not accept client ID \"portway-laptop\" (invalid_client: Client authentication failed): check auth.oidc.clientID and auth.oidc.clientSecret";
    await emit(page, "status-changed", { conn: { state: "error", reason, retryInMs: null }, proxies: {} });
    const box = page.locator(tid("conn-explain"));
    await expect(box.isVisible()).resolves.toBe(true);
    const plain = await page.locator(tid("conn-error")).textContent();
    expect(plain).toContain("Client ID");
    expect(plain).toContain("Client secret");
    await expect(page.locator(tid("conn-detail")).textContent()).resolves.toBe(reason);
    await emit(page, "status-changed", { conn: { state: "disconnected" }, proxies: {} });
    await expect(box.isVisible()).resolves.toBe(false);
  });
});
