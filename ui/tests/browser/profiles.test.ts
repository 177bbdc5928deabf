// Several server profiles: the bar lists them with their state, picks the one the form edits, adds, renames and
// deletes profiles, imports a file as a new one, and connects or disconnects them all.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, Harness, PROFILE, calls, emit, seed, tid } from "./harness";
import type { Profile, Status } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const WORK: Profile = {
  ...structuredClone(PROFILE),
  server: { addr: "work.example.com", port: 7001, protocol: "wss", tls: true, user: "", tcpMux: true },
  auth: { method: "token", tokenEndpointUrl: "", clientId: "", audience: "", scope: "", hasSecret: false },
  proxies: [{ ...structuredClone(PROFILE.proxies[0]!), name: "rdp", localPort: 3389, remotePort: 6389 }],
};
const OFF: Status = { conn: { state: "disconnected" }, proxies: {} };
const twoProfiles = () => seed({ firstName: "Home", others: [{ id: "w1", name: "Work", profile: structuredClone(WORK), status: structuredClone(OFF) }] });

describe("profiles", () => {
  it("lists every profile with its state; choosing one loads its settings and status into the form", async () => {
    const page = await hx.open(twoProfiles());
    await expect.poll(() => page.locator(tid("profile-tab-Home")).getAttribute("aria-selected")).toBe("true");
    await expect.poll(() => page.locator(tid("profile-state-Work")).textContent()).toBe("Disconnected");
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("tunnel.example.com");
    // The page's first state came in one call, none of the single reads.
    const startup = (await calls(page)).map((c) => c.cmd).filter((c) => !c.startsWith("plugin:event"));
    expect(startup[0]).toBe("page_start");
    expect(startup).not.toContain("get_profile");

    await page.click(tid("profile-tab-Work"));
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("work.example.com");
    await expect.poll(() => page.locator(tid("profile-tab-Work")).getAttribute("aria-selected")).toBe("true");
    await expect.poll(() => page.locator(tid("profile-name")).inputValue()).toBe("Work");
    await expect.poll(() => page.locator(tid("proxy-status-rdp")).textContent()).toBe("Not running");
    expect((await calls(page, "get_status")).at(-1)!.args).toEqual({ id: "w1" });

    // Another profile's event moves its tab only; this profile's event moves the header too.
    const since = Date.now();
    await emit(page, "status-changed", { profileId: "default", conn: { state: "connected", runId: "a", since }, proxies: {} });
    await expect.poll(() => page.locator(tid("profile-state-Home")).textContent()).toBe("Connected");
    await expect.poll(() => page.locator(tid("conn-state")).textContent()).toBe("Disconnected");
    await emit(page, "status-changed", { profileId: "w1", conn: { state: "error", reason: "refused", retryInMs: 3000 }, proxies: {} });
    await expect.poll(() => page.locator(tid("profile-state-Work")).textContent()).toBe("Retrying");
    await expect.poll(() => page.locator(tid("conn-state")).textContent()).toMatch(/^Error: refused/);
    await expect.poll(() => page.locator(tid("profile-tab-Work")).getAttribute("data-tone")).toBe("bad");
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, "profiles.png"), fullPage: true });

    // Save and Connect act on the profile shown.
    await emit(page, "status-changed", { profileId: "w1", conn: { state: "error", reason: "bad token", retryInMs: null }, proxies: {} });
    await expect.poll(() => page.locator(tid("profile-state-Work")).textContent()).toBe("Error");
    await page.fill(tid("server-port"), "7443");
    await page.click(tid("connect-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "connect"));
    const saved = (await calls(page, "save_profile"))[0]!.args as { id: string; profile: Profile };
    expect(saved.id).toBe("w1");
    expect(saved.profile.server.port).toBe(7443);
    expect((await calls(page, "connect"))[0]!.args).toEqual({ id: "w1" });
  });

  it("Add server creates and shows an empty profile; the name field renames it; a taken name is refused", async () => {
    const page = await hx.open(twoProfiles());
    await page.click(tid("add-profile"));
    await expect.poll(() => page.locator(tid("profile-tab-New-server")).getAttribute("aria-selected")).toBe("true");
    expect((await calls(page, "add_profile"))[0]!.args).toEqual({ name: "New server" });
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("");
    await expect.poll(() => page.locator(tid("proxy-list")).textContent()).toContain("No proxies yet");

    await page.fill(tid("profile-name"), "Lab");
    await page.press(tid("profile-name"), "Enter");
    await expect.poll(() => page.locator(tid("profile-tab-Lab")).count()).toBe(1);
    const renamed = (await calls(page, "rename_profile"))[0]!.args as { id: string; name: string };
    expect(renamed.name).toBe("Lab");
    expect(renamed.id).not.toBe("default");

    await page.fill(tid("profile-name"), "Work");
    await page.press(tid("profile-name"), "Enter");
    await expect.poll(() => page.locator(tid("toast")).last().textContent()).toContain('a profile named "Work" exists already');
    await expect.poll(() => page.locator(tid("profile-name")).inputValue()).toBe("Lab");
  });

  it("Delete asks first, then deletes the profile shown and shows the first", async () => {
    const page = await hx.open(twoProfiles());
    await page.click(tid("profile-tab-Work"));
    await expect.poll(() => page.locator(tid("profile-name")).inputValue()).toBe("Work");
    await page.click(tid("profile-delete"));
    await expect.poll(() => page.locator(tid("profile-delete")).textContent()).toBe("Delete Work and its stored secrets?");
    expect(await calls(page, "delete_profile")).toHaveLength(0);
    await page.click(tid("profile-delete"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "delete_profile"));
    expect((await calls(page, "delete_profile"))[0]!.args).toEqual({ id: "w1" });
    await expect.poll(() => page.locator(tid("profile-tab-Work")).count()).toBe(0);
    await expect.poll(() => page.locator(tid("profile-tab-Home")).getAttribute("aria-selected")).toBe("true");
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("tunnel.example.com");
  });

  it("switching away from unsaved changes asks; declining keeps the form", async () => {
    const page = await hx.open(twoProfiles());
    await page.fill(tid("server-addr"), "typed.example.com");
    page.once("dialog", (d) => void d.dismiss());
    await page.click(tid("profile-tab-Work"));
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("typed.example.com");
    await expect.poll(() => page.locator(tid("profile-tab-Home")).getAttribute("aria-selected")).toBe("true");
    page.once("dialog", (d) => void d.accept());
    await page.click(tid("profile-tab-Work"));
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("work.example.com");
  });

  it("Connect all and Disconnect all invoke theirs; a profile that cannot connect is named", async () => {
    const page = await hx.open(twoProfiles());
    await page.click(tid("connect-all"));
    await page.click(tid("disconnect-all"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "disconnect_all"));
    expect((await calls(page)).map((c) => c.cmd).filter((c) => c.endsWith("_all"))).toEqual(["connect_all", "disconnect_all"]);
    await page.evaluate(() => window.__mock.fail("connect_all", { code: "no_secret", message: "Work: no secret is stored" }));
    await page.click(tid("connect-all"));
    await expect.poll(() => page.locator(tid("toast")).last().textContent()).toContain("Work: no secret is stored");
  });

  it("Add from frpc file imports into a new profile and shows it", async () => {
    const s = twoProfiles();
    s.replies = { import_frpc: { id: "w1", profile: WORK, skipped: [] } };
    const page = await hx.open(s);
    const toml = 'serverAddr = "work.example.com"\n';
    await page.setInputFiles(tid("import-new-file"), { name: "work.toml", mimeType: "text/plain", buffer: Buffer.from(toml) });
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "import_frpc"));
    expect((await calls(page, "import_frpc"))[0]!.args).toEqual({ id: null, text: toml });
    await expect.poll(() => page.locator(tid("profile-tab-Work")).getAttribute("aria-selected")).toBe("true");
    await expect.poll(() => page.locator(tid("server-addr")).inputValue()).toBe("work.example.com");
    await expect.poll(() => page.locator(tid("toast")).last().textContent()).toContain("Added work.toml");
  });
});
