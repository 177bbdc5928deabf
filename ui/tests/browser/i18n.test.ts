// English and 简体中文: the switch in Options re-renders every screen at once (keeping what was typed), tells the
// backend (set_language), and switching back restores English; the stored choice and the OS locale (Auto) apply
// from the start.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Page } from "playwright-core";
import { Harness, PROFILE, calls, emit, seed, tid } from "./harness";
import type { DiagStep, Profile, Skipped, Status } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const CONNECTED: Status = {
  conn: { state: "connected", runId: "r1", since: Date.now() - 60_000 },
  proxies: {
    web: { state: "running", remoteAddr: ":6000", bytesIn: 1536, bytesOut: 0, conns: 1 },
    dns: { state: "error", reason: "port 6053 is not allowed", bytesIn: 0, bytesOut: 0, conns: 0 },
  },
};

const text = (page: Page, id: string) => page.locator(tid(id)).first().textContent();
const heading = (page: Page, section: string) => page.locator(`${tid(`section-${section}`)} h2`).textContent();
/** English words of the UI's own labels that must not be left on a Chinese screen. */
const ENGLISH = ["Save", "Proxies", "Options", "Authentication", "Diagnostics", "Disconnect", "Add server", "Add proxy", "Logs", "Theme", "Language", "Remote port", "Running", "Refused", "Unsaved", "All changes saved"];

async function choose(page: Page, lang: string): Promise<void> {
  await page.selectOption(tid("language-select"), lang);
}

describe("language switch", () => {
  it("switches the main screens to 简体中文 and back to English, keeping what was typed", async () => {
    const page = await hx.open(seed({ status: structuredClone(CONNECTED), others: [{ id: "p2", name: "Work", profile: structuredClone(PROFILE), status: { conn: { state: "disconnected" }, proxies: {} } }] }));
    await expect(text(page, "conn-state")).resolves.toMatch(/^Connected since /);
    await page.fill(tid("server-addr"), "edited.example.com");
    await page.fill(tid("client-secret"), "typed-secret");

    await choose(page, "zh-CN");
    await expect(text(page, "conn-state")).resolves.toMatch(/^已连接，自 .+ 起$/);
    await expect(text(page, "connect-button")).resolves.toBe("断开");
    await expect(heading(page, "server")).resolves.toBe("服务器");
    await expect(heading(page, "auth")).resolves.toBe("认证");
    await expect(heading(page, "proxies")).resolves.toBe("代理");
    await expect(heading(page, "diagnostics")).resolves.toBe("诊断");
    await expect(heading(page, "options")).resolves.toBe("选项");
    await expect(text(page, "save-button")).resolves.toBe("保存");
    await expect(text(page, "add-profile")).resolves.toBe("添加服务器");
    await expect(text(page, "profile-state-Work")).resolves.toBe("已断开");
    await expect(text(page, "proxy-status-web")).resolves.toBe("运行中：tunnel.example.com:6000");
    // A refusal the app does not recognise: a Chinese lead-in, the server's words under it.
    await expect(text(page, "proxy-status-dns")).resolves.toBe("被服务器拒绝");
    await expect(text(page, "proxy-reason-dns")).resolves.toBe("port 6053 is not allowed");
    await expect(text(page, "proxy-traffic-web")).resolves.toBe("入 1.5 KiB · 出 0 B · 1 个连接");
    await expect(text(page, "form-summary")).resolves.toBe("有未保存的更改");
    await expect(page.evaluate(() => document.documentElement.lang)).resolves.toBe("zh-CN");
    // What was typed survives the re-render.
    await expect(page.inputValue(tid("server-addr"))).resolves.toBe("edited.example.com");
    await expect(page.inputValue(tid("client-secret"))).resolves.toBe("typed-secret");
    // The backend was told (it stores the choice and relabels the tray).
    const told = await calls(page, "set_language");
    expect(told.at(-1)?.args).toEqual({ language: "zh-CN", osLocale: "en-US" });
    const shown = await page.locator("body").innerText();
    for (const w of ENGLISH) expect(shown, `"${w}" left in English`).not.toContain(w);

    // A validation message, in Chinese.
    await page.fill(tid("server-port"), "70000");
    await expect(text(page, "error-port")).resolves.toBe("端口必须在 1 到 65535 之间");

    await choose(page, "en");
    await expect(text(page, "conn-state")).resolves.toMatch(/^Connected since /);
    await expect(text(page, "connect-button")).resolves.toBe("Disconnect");
    await expect(heading(page, "server")).resolves.toBe("Server");
    await expect(heading(page, "diagnostics")).resolves.toBe("Diagnostics");
    await expect(text(page, "save-button")).resolves.toBe("Save");
    await expect(text(page, "proxy-status-web")).resolves.toBe("Running at tunnel.example.com:6000");
    await expect(text(page, "proxy-status-dns")).resolves.toBe("Refused: port 6053 is not allowed");
    await expect(page.locator(tid("proxy-reason-dns")).isVisible()).resolves.toBe(false);
    await expect(text(page, "error-port")).resolves.toBe("Port must be from 1 to 65535");
    await expect(text(page, "profile-state-Work")).resolves.toBe("Disconnected");
    expect((await calls(page, "set_language")).at(-1)?.args).toEqual({ language: "en", osLocale: "en-US" });
    // No Chinese left but the language picker's own name for 简体中文.
    expect((await page.locator("body").innerText()).replace("简体中文", "")).not.toMatch(/[\u4e00-\u9fff]/);
  });

  it("explains errors in Chinese and keeps the backend's English text as the detail", async () => {
    const page = await hx.open(seed({ language: "zh-CN" }));
    await emit(page, "status-changed", { conn: { state: "error", reason: "token endpoint: invalid_client: Client authentication failed", retryInMs: null }, proxies: {} });
    await expect(text(page, "conn-error")).resolves.toContain("客户端密钥");
    await expect(text(page, "conn-detail")).resolves.toBe("token endpoint: invalid_client: Client authentication failed");
    await emit(page, "status-changed", { conn: { state: "error", reason: "connecting to 127.0.0.1:7000: connection refused (os error 111)", retryInMs: 5000 }, proxies: {} });
    await expect(text(page, "conn-error")).resolves.toContain("服务器拒绝了连接");

    // A command error: a translated sentence by its code, the message as a detail.
    await page.evaluate(() => window.__mock.fail("connect", { code: "no_secret", message: "My server: no secret is stored: enter the client secret (or token) and save it first" }));
    await emit(page, "status-changed", { conn: { state: "disconnected" }, proxies: {} });
    await page.click(tid("connect-button"));
    await page.waitForSelector(tid("toast-detail"));
    await expect(text(page, "toast")).resolves.toContain("尚未保存密钥");
    await expect(text(page, "toast-detail")).resolves.toContain("no secret is stored");
  });

  it("shows the diagnostics' steps in Chinese, with the engine's words as a detail", async () => {
    const steps: DiagStep[] = [
      { step: "dns", outcome: "ok", code: "resolved", summary: "tunnel.example.com is 192.0.2.7", fix: "", detail: "", millis: 3 },
      { step: "tcp", outcome: "fail", code: "refused", summary: "192.0.2.7:7000 refused the connection", fix: "start frps", detail: "os error 111", millis: 1400 },
      { step: "tls", outcome: "skipped", code: "notRun", summary: "not checked: fix the step above first", fix: "", detail: "", millis: 0 },
    ];
    const page = await hx.open(seed({ language: "zh-CN", replies: { diagnose: steps } }));
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-step-tcp")}`);
    await expect(text(page, "diag-verdict")).resolves.toBe("在“TCP 连接”这一步停止：目标机器有响应，但该端口上没有服务在监听。");
    await expect(page.locator(`${tid("diag-step-tcp")} ${tid("diag-fix")}`).textContent()).resolves.toContain("bindPort");
    await expect(page.locator(`${tid("diag-step-tcp")} ${tid("diag-detail")}`).textContent()).resolves.toContain("192.0.2.7:7000 refused the connection");
    await expect(page.locator(`${tid("diag-step-tcp")} ${tid("diag-time")}`).textContent()).resolves.toBe("1.4 秒");
    await expect(page.locator(`${tid("diag-step-tls")} ${tid("diag-summary")}`).textContent()).resolves.toBe("未检查：请先解决上一步的问题");
    // Switching back renders the same result in the engine's English.
    await choose(page, "en");
    await expect(text(page, "diag-verdict")).resolves.toBe("Stopped at TCP connect: 192.0.2.7:7000 refused the connection.");
  });

  it("says the backend's codes in Chinese, with the backend's and the server's own words under them", async () => {
    const detail = "The name org.freedesktop.secrets was not provided by any .service files";
    const nas = { name: "nas", type: "stcp" as const, serverName: "files", serverUser: "", bindAddr: "127.0.0.1", bindPort: 6445, enabled: true, fallbackTo: "", hasSecretKey: true };
    const s = seed({ language: "zh-CN", keychain: { available: false, code: "unavailable", detail } });
    (s.profile as Profile).visitors = [nas];
    const page = await hx.open(s);
    // The keychain banner: the fix in Chinese, the keychain's words folded under it.
    await expect(text(page, "banner-text")).resolves.toContain("系统钥匙串不可用");
    await expect(text(page, "banner-text")).resolves.toContain("Secret Service");
    await expect(text(page, "banner-detail")).resolves.toBe(detail);

    // A connection error the app does not recognise: the header stays Chinese, the banner names what failed.
    const odd = "the server said: quota exceeded for user bob";
    await emit(page, "status-changed", { conn: { state: "error", reason: odd, retryInMs: 5000 }, proxies: {}, profileId: "default" });
    await expect.poll(() => text(page, "conn-state")).toMatch(/^错误 — \d 秒后重试$/);
    await expect(text(page, "conn-error")).resolves.toBe("与服务器的连接出错。");
    await expect(text(page, "conn-detail")).resolves.toBe(odd);

    // A visitor's failure: a Chinese lead-in, the engine's words under it.
    const why = 'the server refused the visitor for proxy "alice.files": auth failed';
    await emit(page, "status-changed", {
      conn: { state: "connected", runId: "r", since: Date.now() },
      proxies: {},
      visitors: { nas: { state: "listening", localAddr: "127.0.0.1:6445", lastError: why, bytesIn: 0, bytesOut: 0, conns: 0 } },
      profileId: "default",
    });
    await expect.poll(() => text(page, "visitor-status-nas")).toBe("失败");
    await expect(text(page, "visitor-reason-nas")).resolves.toBe(why);

    // A command error with its specifics: the proxy named in Chinese, the English message as the detail.
    await page.evaluate(() =>
      window.__mock.fail("disconnect", { code: "no_secret", message: "proxy web: no secret key is stored: type the key visitors must give and save", reason: { code: "noProxySecretKey", proxy: "web" } } as never),
    );
    await page.click(tid("connect-button"));
    await page.waitForSelector(tid("toast-detail"));
    await expect(text(page, "toast")).resolves.toContain("代理 web 没有保存密钥");
    await expect(text(page, "toast-detail")).resolves.toContain("no secret key is stored");
  });

  it("says what an import left out in Chinese", async () => {
    const skipped: Skipped[] = [
      { code: "pluginNotSupported", name: "socks", plugin: "socks5" },
      { code: "visitorSettingsDropped", name: "lab", settings: "keepTunnelOpen" },
      { code: "visitorInvalid", name: "v2", detail: "`visitors[1].serverName` is empty" },
    ];
    const page = await hx.open(seed({ language: "zh-CN", replies: { import_frpc: { profile: PROFILE, skipped } } }));
    await page.setInputFiles(tid("import-file"), { name: "frpc.ini", mimeType: "text/plain", buffer: Buffer.from("[common]\n") });
    await page.waitForSelector(tid("toast-detail"));
    const toast = (await text(page, "toast")) ?? "";
    expect(toast).toContain("代理 socks：使用了 socks5 插件");
    expect(toast).toContain("私密服务 lab：已导入，但不含 keepTunnelOpen");
    expect(toast).toContain("私密服务 v2：其设置无法使用");
    await expect(text(page, "toast-detail")).resolves.toBe("v2: `visitors[1].serverName` is empty");
  });

  it("shows a certificate's trust in Chinese, the engine's words under it", async () => {
    const tls: DiagStep = {
      step: "tls",
      outcome: "warn",
      code: "unverified",
      summary: "certificate for CN=frps issued by itself (self-signed), valid until 2027-01-01; not trusted by the system's roots: signed by an authority it does not know",
      fix: "set transport.tls.trustedCaFile",
      detail: "",
      millis: 12,
      certificate: { subject: "CN=frps", issuer: "CN=frps", notBefore: 0, notAfter: 1_800_000_000, selfSigned: true, trusted: false, trust: "not trusted by the system's roots: signed by an authority it does not know" },
    };
    const page = await hx.open(seed({ language: "zh-CN", replies: { diagnose: [tls] } }));
    await page.click(tid("diag-button"));
    await page.waitForSelector(tid("diag-cert-trusted"));
    await expect(text(page, "diag-cert-trusted")).resolves.toMatch(/^否 /);
    await expect(text(page, "diag-cert-trust")).resolves.toBe(tls.certificate!.trust);
  });

  it("starts in the stored language, and Auto follows the OS locale", async () => {
    let page = await hx.open(seed({ language: "zh-CN" }));
    await expect(text(page, "conn-state")).resolves.toBe("已断开");
    await expect(page.inputValue(tid("language-select"))).resolves.toBe("zh-CN");
    // Built before the stored choice was read, relabelled after: the bar's own label too.
    await expect(page.getAttribute(tid("profile-bar"), "aria-label")).resolves.toBe("服务器配置");
    await expect(page.getAttribute(tid("log-view"), "aria-label")).resolves.toBe("日志");
    await expect(heading(page, "diagnostics")).resolves.toBe("诊断");

    page = await hx.open(seed(), { locale: "zh-CN" });
    await expect(text(page, "conn-state")).resolves.toBe("已断开");
    await expect(page.inputValue(tid("language-select"))).resolves.toBe("auto");
    expect((await calls(page, "set_language")).at(-1)?.args).toEqual({ language: "auto", osLocale: "zh-CN" });

    page = await hx.open(seed({ language: "en" }), { locale: "zh-TW" });
    await expect(text(page, "conn-state")).resolves.toBe("Disconnected");
  });
});
