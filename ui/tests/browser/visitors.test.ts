// Secret proxies (stcp/sudp/xtcp) in the editor and "Connect to a private service" (visitors): their forms,
// validation, the keys going to the keychain only, the one-click switch and every state a visitor row shows.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { Harness, calls, emit, seed, tid } from "./harness";
import type { Profile, Status, VisitorDef } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const saveEnabled = (page: Page) => page.locator(tid("save-button")).isEnabled();
const prow = (name: string, field: string) => `${tid(`proxy-row-${name}`)} ${tid(field)}`;
const vrow = (name: string, field: string) => `${tid(`visitor-row-${name}`)} ${tid(field)}`;
const badge = (page: Page, name: string) => page.locator(tid(`visitor-status-${name}`));
const connected = (visitors: Status["visitors"], proxies: Status["proxies"] = {}): Status => ({
  conn: { state: "connected", runId: "r", since: Date.now() },
  proxies,
  visitors,
  profileId: "default",
});

function visitor(v: Partial<VisitorDef> & { name: string }): VisitorDef {
  return { type: "stcp", serverName: "files", serverUser: "", bindAddr: "127.0.0.1", bindPort: 6000, enabled: true, fallbackTo: "", hasSecretKey: true, ...v };
}

function withVisitors(vs: VisitorDef[]) {
  const s = seed();
  (s.profile as Profile).visitors = vs;
  return s;
}

async function unnamedControls(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>("input, select, textarea, button, a[href]"))
      .filter((el) => {
        const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
        const text = el.tagName === "BUTTON" || el.tagName === "A" ? el.textContent?.trim() : "";
        return !labelled && !text;
      })
      .map((el) => el.outerHTML.slice(0, 120)),
  );
}

describe("secret proxies", () => {
  it("stcp asks for a secret key and allowed users, and the key goes to the keychain only", async () => {
    const page = await hx.open();
    await page.locator(prow("web", "proxy-type")).selectOption("stcp");
    await expect(page.locator(prow("web", "proxy-remote-port")).isVisible()).resolves.toBe(false);
    await expect(page.locator(prow("web", "proxy-secret-key")).isVisible()).resolves.toBe(true);
    expect(await saveEnabled(page)).toBe(false);
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toContain("secret key");
    await page.fill(prow("web", "proxy-allow-users"), "alice, bo/b");
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toContain("allowed users");
    await page.fill(prow("web", "proxy-allow-users"), "alice, *");
    await page.fill(prow("web", "proxy-secret-key"), "nas-s3cret");
    expect(await saveEnabled(page)).toBe(true);
    // The other types do not show the secret fields.
    await expect(page.locator(prow("dns", "proxy-secret-key")).isVisible()).resolves.toBe(false);
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_proxy_secret_key"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.proxies[0]).toMatchObject({ name: "web", type: "stcp", remotePort: 0, allowUsers: ["alice", "*"] });
    expect(JSON.stringify(await calls(page, "save_profile"))).not.toContain("nas-s3cret");
    expect((await calls(page, "set_proxy_secret_key"))[0]!.args).toEqual({ id: "default", name: "web", secret: "nas-s3cret" });
    await expect.poll(() => page.locator(prow("web", "proxy-secret-key")).getAttribute("placeholder")).toContain("stored in the system keychain");
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    // Running: no public address, reached through a visitor.
    await emit(page, "status-changed", connected({}, { web: { state: "running", remoteAddr: "", bytesIn: 0, bytesOut: 0, conns: 0 } }));
    await expect.poll(() => page.locator(tid("proxy-status-web")).textContent()).toBe("Running: reached through a visitor");
  });

  it("a renamed secret proxy is sent with the name it had, so its key moves with it", async () => {
    const s = seed();
    s.profile.proxies[0] = { ...s.profile.proxies[0]!, type: "xtcp", remotePort: 0, hasSecretKey: true, allowUsers: [] };
    const page = await hx.open(s);
    expect(await saveEnabled(page)).toBe(true);
    await page.fill(prow("web", "proxy-name"), "ssh-p2p");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "save_profile"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.proxies[0]).toMatchObject({ name: "ssh-p2p", renamedFrom: "web", type: "xtcp" });
    expect(await calls(page, "set_proxy_secret_key")).toHaveLength(0);
  });
});

describe("connect to a private service", () => {
  it("add one: validation, Save with its key, one click turns it on, the row shows the address and the state", async () => {
    const page = await hx.open();
    await expect(page.locator(tid("visitors-empty")).isVisible()).resolves.toBe(true);
    await page.click(tid("add-visitor"));
    await expect(page.locator(vrow("service-1", "visitor-toggle")).isChecked()).resolves.toBe(false);
    expect(await saveEnabled(page)).toBe(false);
    const summary = await page.locator(tid("form-summary")).textContent();
    expect(summary).toContain("server name");
    expect(summary).toContain("local port");
    expect(summary).toContain("secret key");
    await page.fill(vrow("service-1", "visitor-name"), "nas");
    await page.fill(vrow("nas", "visitor-server-name"), "files");
    await page.fill(vrow("nas", "visitor-bind-port"), "abc");
    const key = await page.locator(tid("visitor-row-nas")).getAttribute("data-key");
    await expect(page.locator(tid(`error-visitor.${key}.bindPort`)).textContent()).resolves.toContain("whole number from 1 to 65535");
    await page.fill(vrow("nas", "visitor-bind-port"), "6445");
    await page.fill(vrow("nas", "visitor-bind-addr"), "localhost");
    await expect(page.locator(tid(`error-visitor.${key}.bindAddr`)).textContent()).resolves.toContain("IP address");
    await page.fill(vrow("nas", "visitor-bind-addr"), "127.0.0.1");
    await page.fill(vrow("nas", "visitor-server-name"), "files share");
    await expect(page.locator(tid(`error-visitor.${key}.serverName`)).textContent()).resolves.toContain("letters, digits");
    await page.fill(vrow("nas", "visitor-server-name"), "files");
    await page.fill(vrow("nas", "visitor-server-user"), "alice");
    await page.fill(vrow("nas", "visitor-secret-key"), "files-k3y");
    expect(await saveEnabled(page)).toBe(true);
    await expect(badge(page, "nas").textContent()).resolves.toBe("Off");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_visitor_secret_key"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.visitors).toEqual([
      { name: "nas", type: "stcp", serverName: "files", serverUser: "alice", bindAddr: "127.0.0.1", bindPort: 6445, enabled: false, fallbackTo: "", hasSecretKey: false },
    ]);
    expect(JSON.stringify(await calls(page, "save_profile"))).not.toContain("files-k3y");
    expect((await calls(page, "set_visitor_secret_key"))[0]!.args).toEqual({ id: "default", name: "nas", secret: "files-k3y" });
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    await expect(page.locator(vrow("nas", "visitor-secret-key")).getAttribute("placeholder")).resolves.toContain("stored in the system keychain");

    // One click: on (the backend connects a disconnected server).
    await page.click(vrow("nas", "visitor-toggle"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_visitor_enabled"));
    expect((await calls(page, "set_visitor_enabled"))[0]!.args).toEqual({ id: "default", name: "nas", enabled: true });
    await expect.poll(() => page.locator(vrow("nas", "visitor-toggle")).isChecked()).toBe(true);
    await expect.poll(() => badge(page, "nas").getAttribute("data-state")).toBe("disconnected");
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    await emit(page, "status-changed", { conn: { state: "connecting", attempt: 1 }, proxies: {}, visitors: { nas: { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 } }, profileId: "default" });
    await expect.poll(() => badge(page, "nas").textContent()).toBe("Waiting");
    await emit(page, "status-changed", connected({ nas: { state: "listening", localAddr: "127.0.0.1:6445", bytesIn: 0, bytesOut: 0, conns: 0 } }));
    await expect.poll(() => badge(page, "nas").textContent()).toBe("Via server");
    await expect(page.locator(tid("visitor-addr-nas")).textContent()).resolves.toBe("127.0.0.1:6445");
    await page.click(tid("visitor-copy-nas"));
    await expect.poll(() => page.evaluate(() => window.__mock.copied)).toContain("127.0.0.1:6445");
    // A refused connection: failed, with the engine's words.
    const why = 'the server refused the visitor for proxy "alice.files": auth failed (secretKey differs from the provider\'s)';
    await emit(page, "status-changed", connected({ nas: { state: "listening", localAddr: "127.0.0.1:6445", lastError: why, bytesIn: 0, bytesOut: 0, conns: 0 } }));
    await expect.poll(() => badge(page, "nas").getAttribute("data-state")).toBe("failed");
    await expect(badge(page, "nas").textContent()).resolves.toContain("secretKey differs");
    await expect(badge(page, "nas").getAttribute("title")).resolves.toContain("auth failed");
    // Off again: one click.
    await page.click(vrow("nas", "visitor-toggle"));
    await expect.poll(async () => (await calls(page, "set_visitor_enabled")).length).toBe(2);
    expect((await calls(page, "set_visitor_enabled"))[1]!.args).toEqual({ id: "default", name: "nas", enabled: false });
    await expect.poll(() => badge(page, "nas").textContent()).toBe("Off");
    await expect(page.locator(tid("visitor-addr-nas")).count()).resolves.toBe(0);
    expect(await unnamedControls(page)).toEqual([]);
  });

  it("xtcp: fallback choices, peer to peer, via the server with why, a port that cannot open, a refused switch", async () => {
    const page = await hx.open(
      withVisitors([
        visitor({ name: "relay", bindPort: -1 }),
        visitor({ name: "p2p", type: "xtcp", serverName: "ssh", bindPort: 6001, fallbackTo: "relay" }),
      ]),
    );
    expect(await saveEnabled(page)).toBe(true);
    const options = await page.locator(`${vrow("p2p", "visitor-fallback")} option`).evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(["", "relay"]);
    await expect(page.locator(vrow("relay", "visitor-fallback")).isVisible()).resolves.toBe(false);
    await emit(
      page,
      "status-changed",
      connected({
        relay: { state: "idle", bytesIn: 0, bytesOut: 0, conns: 0 },
        p2p: { state: "listening", localAddr: "127.0.0.1:6001", bytesIn: 0, bytesOut: 0, conns: 0 },
      }),
    );
    await expect.poll(() => badge(page, "p2p").textContent()).toBe("Ready");
    await expect(badge(page, "relay").textContent()).resolves.toBe("No local port");
    await emit(page, "status-changed", connected({ p2p: { state: "listening", localAddr: "127.0.0.1:6001", path: "peer to peer", bytesIn: 10, bytesOut: 10, conns: 1 } }));
    await expect.poll(() => badge(page, "p2p").textContent()).toBe("Peer to peer");
    const stun = "xtcp: the STUN server 127.0.0.1:3478 did not answer";
    await emit(page, "status-changed", connected({ p2p: { state: "listening", localAddr: "127.0.0.1:6001", path: "via server (fallbackTo relay)", lastError: stun, bytesIn: 10, bytesOut: 10, conns: 2 } }));
    await expect.poll(() => badge(page, "p2p").textContent()).toBe("Via server (fallback)");
    await expect(badge(page, "p2p").getAttribute("title")).resolves.toContain("STUN server");
    await emit(page, "status-changed", connected({ p2p: { state: "error", reason: "cannot listen on 127.0.0.1:6001: address in use (port in use? change bindPort)", bytesIn: 0, bytesOut: 0, conns: 0 } }));
    await expect.poll(() => badge(page, "p2p").getAttribute("data-state")).toBe("failed");
    await expect(badge(page, "p2p").textContent()).resolves.toContain("address in use");
    await expect(page.locator(tid("visitor-addr-p2p")).count()).resolves.toBe(0);

    // Validation: a fallback must be stcp; only stcp may have no port.
    const key = await page.locator(tid("visitor-row-p2p")).getAttribute("data-key");
    const rkey = await page.locator(tid("visitor-row-relay")).getAttribute("data-key");
    await page.locator(vrow("relay", "visitor-type")).selectOption("sudp");
    await expect(page.locator(tid(`error-visitor.${key}.fallbackTo`)).textContent()).resolves.toContain("must be an stcp");
    await expect(page.locator(tid(`error-visitor.${rkey}.bindPort`)).textContent()).resolves.toContain("no port (-1)");
    expect(await saveEnabled(page)).toBe(false);
    await page.locator(vrow("relay", "visitor-type")).selectOption("stcp");
    expect(await saveEnabled(page)).toBe(true);

    // The backend refuses the switch: its message shows and the switch goes back.
    await page.evaluate(() => window.__mock.fail("set_visitor_enabled", { code: "no_secret", message: "visitor p2p: no secret key is stored: type the provider's secret key and save" }));
    await page.click(vrow("p2p", "visitor-toggle"));
    await expect.poll(() => page.locator(tid("toast")).last().textContent()).toContain("no secret key is stored");
    await expect.poll(() => page.locator(vrow("p2p", "visitor-toggle")).isChecked()).toBe(true);

    // A rename is sent with the old name (the key moves with it) and the fallback follows nothing stale.
    await page.fill(vrow("p2p", "visitor-name"), "lab");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "save_profile"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.visitors![1]).toMatchObject({ name: "lab", renamedFrom: "p2p", fallbackTo: "relay", bindPort: 6001 });
    expect(sent.visitors![0]).toMatchObject({ name: "relay", bindPort: -1 });
    expect(sent.visitors![0]!.renamedFrom).toBeUndefined();
    expect(await unnamedControls(page)).toEqual([]);
  });

  it("two services on one local port are refused; an edited row's switch waits for Save", async () => {
    const page = await hx.open(withVisitors([visitor({ name: "a" }), visitor({ name: "b", bindPort: 6002, enabled: false })]));
    await page.fill(vrow("b", "visitor-bind-port"), "6000");
    expect(await saveEnabled(page)).toBe(true); // b is off
    await page.click(vrow("b", "visitor-toggle"));
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toContain("local port");
    const key = await page.locator(tid("visitor-row-b")).getAttribute("data-key");
    await expect(page.locator(tid(`error-visitor.${key}.bindPort`)).textContent()).resolves.toContain("a uses this local port already");
    expect(await calls(page, "set_visitor_enabled")).toHaveLength(0);
    await page.click(vrow("a", "visitor-remove"));
    await expect(page.locator(tid("visitor-row-a")).count()).resolves.toBe(0);
    expect(await saveEnabled(page)).toBe(true);
  });
});
