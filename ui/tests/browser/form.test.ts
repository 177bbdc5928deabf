// Validation before anything is sent, proxies editing, options, import and export.
import { PROXY_EXTRAS } from "../../src/form";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { Harness, PROFILE, calls, emit, seed, tid } from "./harness";
import type { Profile, Skipped } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const saveEnabled = (page: Page) => page.locator(tid("save-button")).isEnabled();
const row = (name: string, field: string) => `${tid(`proxy-row-${name}`)} ${tid(field)}`;

describe("validation", () => {
  it("a bad port shows a message next to the field and blocks Save and Connect", async () => {
    const page = await hx.open();
    expect(await saveEnabled(page)).toBe(true);
    await page.fill(tid("server-port"), "70000");
    await expect(page.locator(tid("error-port")).textContent()).resolves.toBe("Port must be from 1 to 65535");
    await expect(page.locator(tid("server-port")).getAttribute("aria-invalid")).resolves.toBe("true");
    expect(await saveEnabled(page)).toBe(false);
    await expect(page.locator(tid("connect-button")).isEnabled()).resolves.toBe(false);
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("To save, fix: Server port");
    await page.fill(tid("server-port"), "7443");
    await expect(page.locator(tid("error-port")).isHidden()).resolves.toBe(true);
    expect(await saveEnabled(page)).toBe(true);
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("Unsaved changes");
  });

  it("a bad token endpoint URL and an empty client ID block Save and Test sign-in", async () => {
    const page = await hx.open();
    await page.fill(tid("token-endpoint"), "auth.example.com/token");
    await expect(page.locator(tid("error-tokenEndpointUrl")).textContent()).resolves.toMatch(/full URL/);
    await page.fill(tid("token-endpoint"), "ftp://auth.example.com/token");
    await expect(page.locator(tid("error-tokenEndpointUrl")).textContent()).resolves.toMatch(/http:\/\/ or https:\/\//);
    expect(await saveEnabled(page)).toBe(false);
    await expect(page.locator(tid("test-signin-button")).isEnabled()).resolves.toBe(false);
    await page.fill(tid("token-endpoint"), "https://auth.example.com/application/o/token/");
    await page.fill(tid("client-id"), "");
    await expect(page.locator(tid("error-clientId")).textContent()).resolves.toBe("Client ID is required");
    expect(await saveEnabled(page)).toBe(false);
  });

  it("the static token method needs no OIDC fields", async () => {
    const page = await hx.open();
    await page.fill(tid("client-id"), "");
    expect(await saveEnabled(page)).toBe(false);
    await page.selectOption(tid("auth-method"), "token");
    await expect(page.locator(tid("client-id")).isVisible()).resolves.toBe(false);
    await expect(page.locator(tid("test-signin-button")).isVisible()).resolves.toBe(false);
    await expect(page.locator('label[for="' + (await page.locator(tid("client-secret")).getAttribute("id")) + '"]').textContent()).resolves.toBe("Token");
    expect(await saveEnabled(page)).toBe(true);
  });

  it("a duplicate proxy name blocks Save; bad name, IP and ports are explained", async () => {
    const page = await hx.open();
    await page.fill(row("dns", "proxy-name"), "web");
    const rows = page.locator(tid("proxy-row-web"));
    await expect(rows.count()).resolves.toBe(2);
    await expect(rows.nth(1).locator(".error").first().textContent()).resolves.toBe("Another proxy already has this name");
    expect(await saveEnabled(page)).toBe(false);

    await rows.nth(1).locator(tid("proxy-name")).fill("bad name");
    await expect(page.locator(row("bad name", "proxy-name") + " + .error").textContent()).resolves.toMatch(/letters, digits/);
    await page.locator(row("bad name", "proxy-name")).fill("dns2");
    expect(await saveEnabled(page)).toBe(true);

    await page.fill(row("dns2", "proxy-local-ip"), "localhost");
    await page.fill(row("dns2", "proxy-remote-port"), "0");
    const errs = await page.locator(`${tid("proxy-row-dns2")} .error:not([hidden])`).allTextContents();
    expect(errs).toEqual(["Enter an IPv4 or IPv6 address, e.g. 127.0.0.1 or ::1", "Remote port must be from 1 to 65535"]);
    expect(await saveEnabled(page)).toBe(false);
    await page.fill(row("dns2", "proxy-local-ip"), "::1");
    await page.fill(row("dns2", "proxy-remote-port"), "6053");
    expect(await saveEnabled(page)).toBe(true);
    // Nothing was sent while the form was invalid.
    expect(await calls(page, "save_profile")).toHaveLength(0);
  });
});

describe("editing and saving", () => {
  it("add, edit, disable and remove proxies, set options, then Save sends the profile", async () => {
    const page = await hx.open();
    await page.click(tid("add-proxy"));
    expect(await saveEnabled(page)).toBe(false); // ports still empty
    await page.fill(row("proxy-1", "proxy-name"), "ssh");
    await page.fill(row("ssh", "proxy-local-port"), "22");
    await page.fill(row("ssh", "proxy-remote-port"), "6022");
    await page.locator(row("web", "proxy-enabled")).uncheck();
    await page.locator(row("dns", "proxy-type")).selectOption("tcp");
    await page.click(row("dns", "proxy-remove"));
    await expect(page.locator(tid("proxy-row-dns")).count()).resolves.toBe(0);
    await page.check(tid("opt-connect-on-launch"));
    await page.check(tid("opt-launch-at-login"));
    await page.selectOption(tid("server-transport"), "wss");
    await page.fill(tid("server-user"), "a b");
    await expect(page.locator(tid("error-user")).textContent()).resolves.toBe("Use only letters, digits, '.', '_' and '-'");
    expect(await saveEnabled(page)).toBe(false);
    await page.fill(tid("server-user"), " alice ");
    await page.locator(tid("server-tcpmux")).uncheck();
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "save_profile"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.proxies).toEqual([
      { ...PROFILE.proxies[0], enabled: false },
      { name: "ssh", type: "tcp", localIp: "127.0.0.1", localPort: 22, remotePort: 6022, enabled: true, ...PROXY_EXTRAS },
    ]);
    expect(sent.options).toEqual({ connectOnLaunch: true, startMinimized: false, launchAtLogin: true });
    expect(sent.server).toEqual({ ...PROFILE.server, protocol: "wss", user: "alice", tcpMux: false });
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    expect(await calls(page, "set_secret")).toHaveLength(0);
  });

  it("a save error shows the backend's message", async () => {
    const page = await hx.open(seed({ failures: { save_profile: { code: "io", message: "Could not write the profile: disk full" } } }));
    await page.fill(tid("server-addr"), "other.example.com");
    await page.click(tid("save-button"));
    await expect(page.locator(tid("toast")).first().textContent()).resolves.toContain("Could not write the profile: disk full");
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("Unsaved changes");
  });
});

describe("import and export", () => {
  it("import reads the file, sends its text to import_frpc and shows the stored result", async () => {
    const imported: Profile = {
      ...PROFILE,
      server: { addr: "frps.example.org", port: 7001, protocol: "quic", tls: false, user: "bob", tcpMux: false },
      proxies: [{ name: "rdp", type: "tcp", localIp: "192.168.1.20", localPort: 3389, remotePort: 6389, enabled: true, ...PROXY_EXTRAS }],
    };
    const page = await hx.open(seed({ replies: { import_frpc: { profile: imported, skipped: [] } } }));
    const toml = 'serverAddr = "frps.example.org"\nserverPort = 7001\n[[proxies]]\nname = "rdp"\n';
    await page.setInputFiles(tid("import-file"), { name: "frpc.toml", mimeType: "text/plain", buffer: Buffer.from(toml) });
    await page.waitForSelector(tid("proxy-row-rdp"));
    expect((await calls(page, "import_frpc"))[0]!.args).toEqual({ id: "default", text: toml });
    await expect(page.locator(tid("server-addr")).inputValue()).resolves.toBe("frps.example.org");
    await expect(page.locator(tid("server-transport")).inputValue()).resolves.toBe("quic");
    await expect(page.locator(tid("server-user")).inputValue()).resolves.toBe("bob");
    await expect(page.locator(tid("server-tcpmux")).isChecked()).resolves.toBe(false);
    await expect(page.locator(tid("proxy-row-web")).count()).resolves.toBe(0);
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("All changes saved");
    await expect(page.locator(tid("toast")).first().textContent()).resolves.toContain("Imported and saved frpc.toml");
  });

  it("an import that left proxies out says which and why", async () => {
    const skipped: Skipped[] = [
      { code: "globalSettingsDropped", settings: "dnsServer, transport.poolCount" },
      { code: "pluginNotSupported", name: "socks", plugin: "socks5" },
      { code: "proxyInvalid", name: "web", detail: "`proxies[0].localPort` must be 1..=65535" },
    ];
    const page = await hx.open(seed({ replies: { import_frpc: { profile: PROFILE, skipped } } }));
    await page.setInputFiles(tid("import-file"), { name: "frpc.ini", mimeType: "text/plain", buffer: Buffer.from("[common]\n") });
    await expect(page.locator(tid("toast")).first().textContent()).resolves.toContain(
      "without: imported without the client-wide settings dnsServer, transport.poolCount (the app does not keep them yet; portway-client reads them); proxy socks: it uses the socks5 plugin, which the app does not offer yet (portway-client runs it); proxy web: its settings cannot be used",
    );
    // frp's own words about the entry that did not load, under the sentence.
    await expect(page.locator(tid("toast-detail")).first().textContent()).resolves.toBe("web: `proxies[0].localPort` must be 1..=65535");
  });

  it("an import error shows the message", async () => {
    const page = await hx.open(seed({ failures: { import_frpc: { code: "import_failed", message: "line 3: unknown key 'serverAdr'" } } }));
    await page.setInputFiles(tid("import-file"), { name: "frpc.toml", mimeType: "text/plain", buffer: Buffer.from("serverAdr = 1") });
    await expect(page.locator(tid("toast")).first().textContent()).resolves.toContain("line 3: unknown key 'serverAdr'");
  });

  it("export fetches the text and offers it as a download", async () => {
    const page = await hx.open();
    await page.click(tid("export-button"));
    await page.waitForSelector(`${tid("export-dialog")}[open]`);
    await expect(page.locator(tid("export-text")).inputValue()).resolves.toContain('serverAddr = "tunnel.example.com"');
    const [download] = await Promise.all([page.waitForEvent("download"), page.click(tid("export-download"))]);
    expect(download.suggestedFilename()).toBe("frpc.toml");
    const path = await download.path();
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(path, "utf8")).toContain("serverPort = 7000");
  });
});

describe("accessibility", () => {
  it("every control has an accessible name", async () => {
    const page = await hx.open();
    await page.click(tid("test-signin-button"));
    await page.waitForSelector(`${tid("signin-result")}[data-state="ok"]`);
    const unnamed = await page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLElement>("input, select, textarea, button, a[href]"))
        .filter((el) => {
          const labelled = (el as HTMLInputElement).labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
          const text = el.tagName === "BUTTON" || el.tagName === "A" ? el.textContent?.trim() : "";
          return !labelled && !text;
        })
        .map((el) => el.outerHTML.slice(0, 120)),
    );
    expect(unnamed).toEqual([]);
  });
});

describe("proxy types", () => {
  it("offers exactly the engine's types; http shows its own fields and stores its password in the keychain only", async () => {
    const page = await hx.open();
    const options = await page.locator(`${row("web", "proxy-type")} option`).evaluateAll((os) => os.map((o) => (o as HTMLOptionElement).value));
    expect(options).toEqual(["tcp", "udp", "http", "https", "tcpmux", "stcp", "sudp", "xtcp"]);
    await page.locator(row("web", "proxy-type")).selectOption("http");
    await expect(page.locator(row("web", "proxy-remote-port")).isVisible()).resolves.toBe(false);
    await expect(page.locator(row("web", "proxy-custom-domains")).isVisible()).resolves.toBe(true);
    expect(await saveEnabled(page)).toBe(false); // no domain yet
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toContain("custom domains");
    await page.fill(row("web", "proxy-custom-domains"), "app.example.com, www.example.com");
    await page.fill(row("web", "proxy-locations"), "/, /api");
    await page.fill(row("web", "proxy-http-user"), "alice");
    expect(await saveEnabled(page)).toBe(false); // a user needs a password
    await page.fill(row("web", "proxy-http-password"), "pa55-word");
    await page.fill(row("web", "proxy-host-header-rewrite"), "localhost");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_proxy_password"));
    const sent = (await calls(page, "save_profile"))[0]!.args!.profile as Profile;
    expect(sent.proxies[0]).toMatchObject({
      type: "http",
      remotePort: 0,
      customDomains: ["app.example.com", "www.example.com"],
      locations: ["/", "/api"],
      httpUser: "alice",
      hostHeaderRewrite: "localhost",
    });
    expect(JSON.stringify(await calls(page, "save_profile"))).not.toContain("pa55-word");
    expect((await calls(page, "set_proxy_password"))[0]!.args).toEqual({ id: "default", name: "web", password: "pa55-word" });
    await expect.poll(() => page.locator(row("web", "proxy-http-password")).inputValue()).toBe("");
    await expect(page.locator(row("web", "proxy-http-password")).getAttribute("placeholder")).resolves.toContain("stored in the system keychain");
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");

    // tcpmux: domains and basic auth, no locations; the multiplexer is fixed to httpconnect.
    await page.locator(row("dns", "proxy-type")).selectOption("tcpmux");
    await expect(page.locator(row("dns", "proxy-locations")).isVisible()).resolves.toBe(false);
    await expect(page.locator(row("dns", "proxy-multiplexer")).textContent()).resolves.toContain("httpconnect");
    await page.fill(row("dns", "proxy-subdomain"), "a.b");
    await expect(page.locator(tid(`error-proxy.${await rowKey(page, "dns")}.subdomain`)).textContent()).resolves.toContain("letters, digits");
  });

  it("says when a saved change needs a reconnect", async () => {
    const page = await hx.open();
    const note = page.locator(tid("reconnect-needed"));
    await emit(page, "status-changed", { conn: { state: "connected", runId: "r", since: Date.now() }, proxies: {}, reconnectNeeded: false });
    await expect(note.isVisible()).resolves.toBe(false);
    await emit(page, "status-changed", { conn: { state: "connected", runId: "r", since: Date.now() }, proxies: {}, reconnectNeeded: true });
    await expect(note.isVisible()).resolves.toBe(true);
    await expect(note.textContent()).resolves.toContain("Disconnect, then Connect");
    await emit(page, "status-changed", { conn: { state: "disconnected" }, proxies: {}, reconnectNeeded: true });
    await expect(note.isVisible()).resolves.toBe(false);
  });
});

async function rowKey(page: Page, name: string): Promise<string> {
  return (await page.locator(tid(`proxy-row-${name}`)).getAttribute("data-key")) ?? "";
}
