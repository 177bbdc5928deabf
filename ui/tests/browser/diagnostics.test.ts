// The Diagnostics panel ("Check") and the theme choice.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ARTIFACTS, Harness, calls, seed, tid } from "./harness";
import type { DiagStep } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const step = (s: Partial<DiagStep> & Pick<DiagStep, "step" | "outcome">): DiagStep => ({ code: "x", summary: "", fix: "", detail: "", millis: 3, ...s });
const notRun = (k: DiagStep["step"]): DiagStep => step({ step: k, outcome: "skipped", code: "notRun", summary: "not checked: fix the step above first" });

const REFUSED: DiagStep[] = [
  step({ step: "dns", outcome: "ok", code: "resolved", summary: "tunnel.example.com is 203.0.113.7", millis: 12 }),
  step({
    step: "tcp",
    outcome: "fail",
    code: "refused",
    summary: "203.0.113.7:7000 refused the connection: the machine answers, but nothing listens on port 7000",
    fix: "The server is down, or serverPort is wrong: start portway-server (or frps) there.",
    detail: "Connection refused (os error 111)",
    millis: 1,
  }),
  notRun("tls"),
  notRun("token"),
  notRun("login"),
];

const ALL_OK: DiagStep[] = [
  step({ step: "dns", outcome: "ok", code: "resolved", summary: "tunnel.example.com is 203.0.113.7" }),
  step({ step: "tcp", outcome: "ok", code: "connected", summary: "connected to 203.0.113.7:7000", millis: 1450 }),
  step({
    step: "tls",
    outcome: "warn",
    code: "unverified",
    summary: "certificate for CN=portway issued by itself (self-signed), valid until 2027-01-15; not trusted",
    fix: "set transport.tls.trustedCaFile to the CA that signed its certificate.",
    certificate: {
      subject: "CN=portway",
      issuer: "CN=portway",
      notBefore: 1_700_000_000,
      notAfter: 1_800_000_000,
      selfSigned: true,
      trusted: false,
      trust: "not trusted by the public web roots: signed by an authority it does not know",
    },
  }),
  step({ step: "token", outcome: "ok", code: "token", summary: "got an access token for client portway-laptop" }),
  step({ step: "login", outcome: "ok", code: "loggedIn", summary: "the server accepted the login (server version 0.70.0, session ab12)" }),
];

describe("Diagnostics", () => {
  it("server down: stops at TCP connect with what to do; the rest is not checked; sends the form's values", async () => {
    const page = await hx.open(seed({ replies: { diagnose: REFUSED } }));
    await page.fill(tid("server-addr"), "other.example.com");
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-result")}[data-state="fail"]`);
    await expect(page.locator(tid("diag-verdict")).textContent()).resolves.toContain("Stopped at TCP connect: 203.0.113.7:7000 refused the connection");
    const tcp = page.locator(tid("diag-step-tcp"));
    await expect(tcp.getAttribute("data-outcome")).resolves.toBe("fail");
    await expect(tcp.getAttribute("data-code")).resolves.toBe("refused");
    await expect(tcp.locator(tid("diag-fix")).textContent()).resolves.toContain("The server is down");
    await expect(tcp.locator(tid("diag-time")).textContent()).resolves.toBe("1 ms");
    await expect(page.locator(`${tid("diag-step-dns")} ${tid("diag-time")}`).textContent()).resolves.toBe("12 ms");
    for (const k of ["tls", "token", "login"]) {
      await expect(page.locator(tid(`diag-step-${k}`)).getAttribute("data-outcome")).resolves.toBe("skipped");
      await expect(page.locator(`${tid(`diag-step-${k}`)} ${tid("diag-time")}`).count()).resolves.toBe(0);
    }
    const sent = (await calls(page, "diagnose"))[0]!.args as { profile: { server: { addr: string } }; secret: string | null };
    expect(sent.profile.server.addr).toBe("other.example.com");
    expect(sent.secret).toBeNull();
    await expect(page.locator(tid("diag-button")).isDisabled()).resolves.toBe(false);
  });

  it("all steps pass: certificate subject, issuer (self-signed), expiry and trust; warning named in the verdict; typed secret sent", async () => {
    const page = await hx.open(seed({ replies: { diagnose: ALL_OK } }));
    await page.fill(tid("client-secret"), "typed-secret");
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-result")}[data-state="warn"]`);
    await expect(page.locator(tid("diag-verdict")).textContent()).resolves.toContain("see the warning at TLS");
    await expect(page.locator(tid("diag-cert-subject")).textContent()).resolves.toBe("CN=portway");
    await expect(page.locator(tid("diag-cert-issuer")).textContent()).resolves.toBe("CN=portway (self-signed)");
    const expiry = await page.locator(tid("diag-cert-expiry")).textContent();
    expect(expiry).toBe(new Intl.DateTimeFormat("en-US", { year: "numeric", month: "short", day: "numeric" }).format(new Date(1_800_000_000_000)));
    await expect(page.locator(tid("diag-cert-trusted")).textContent()).resolves.toMatch(/^No: not trusted by the public web roots/);
    await expect(page.locator(`${tid("diag-step-tcp")} ${tid("diag-time")}`).textContent()).resolves.toBe("1.4 s");
    await expect(page.locator(`${tid("diag-step-login")} ${tid("diag-fix")}`).count()).resolves.toBe(0);
    expect(((await calls(page, "diagnose"))[0]!.args as { secret: string }).secret).toBe("typed-secret");
    await page.screenshot({ path: `${ARTIFACTS}/diagnostics-light.png`, fullPage: false });

    const ok = ALL_OK.map((s) => (s.step === "tls" ? { ...s, outcome: "ok" as const, code: "trusted" } : s));
    await page.evaluate((v) => window.__mock.reply("diagnose", v), ok);
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-result")}[data-state="ok"]`);
    await expect(page.locator(tid("diag-verdict")).textContent()).resolves.toBe("Every step passed: the server can be reached and accepts the login.");
  });

  it("a refused command (no secret) is shown with its message; an invalid address is not sent", async () => {
    const message = "enter the client secret to run the check (it is not stored yet)";
    const page = await hx.open(seed({ failures: { diagnose: { code: "no_secret", message } } }));
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-result")}[data-state="error"]`);
    await expect(page.locator(tid("diag-verdict")).textContent()).resolves.toBe(message);
    await expect(page.locator(tid("diag-result")).getAttribute("data-code")).resolves.toBe("no_secret");

    await page.fill(tid("server-addr"), "");
    await page.click(tid("diag-button"));
    await page.waitForSelector(`${tid("diag-result")}[data-state="fail"]`);
    await expect(page.locator(tid("diag-verdict")).textContent()).resolves.toContain("Fix the highlighted fields first");
    expect(await calls(page, "diagnose")).toHaveLength(1);
  });
});

describe("Theme", () => {
  const bg = (page: import("playwright-core").Page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

  it("follows the OS, and the Options choice overrides it and is kept", async () => {
    const dark = await hx.open(seed({ replies: { diagnose: ALL_OK } }), { colorScheme: "dark" });
    expect(await bg(dark)).toBe("rgb(21, 24, 29)");
    await dark.click(tid("diag-button"));
    await dark.waitForSelector(`${tid("diag-result")}[data-state="warn"]`);
    await dark.screenshot({ path: `${ARTIFACTS}/diagnostics-dark.png` });
    await dark.selectOption(tid("theme-select"), "light");
    expect(await bg(dark)).toBe("rgb(244, 245, 247)");
    await expect(dark.evaluate(() => document.documentElement.dataset.theme)).resolves.toBe("light");
    await dark.reload();
    await dark.waitForSelector(tid("theme-select"));
    expect(await bg(dark)).toBe("rgb(244, 245, 247)");
    await expect(dark.locator(tid("theme-select")).inputValue()).resolves.toBe("light");
    await dark.selectOption(tid("theme-select"), "system");
    expect(await bg(dark)).toBe("rgb(21, 24, 29)");

    const light = await hx.open(seed(), { colorScheme: "light" });
    expect(await bg(light)).toBe("rgb(244, 245, 247)");
    await light.selectOption(tid("theme-select"), "dark");
    expect(await bg(light)).toBe("rgb(21, 24, 29)");
  });
});
