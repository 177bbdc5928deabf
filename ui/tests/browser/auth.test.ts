// The secret field, the keychain banner and Test sign-in.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Harness, PROFILE, calls, seed, tid } from "./harness";
import type { Profile } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const localTime = (ms: number) => new Date(ms).toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

describe("secret field", () => {
  it("never shows a stored secret; an empty field keeps it; a typed one is stored and cleared", async () => {
    const page = await hx.open();
    const secret = page.locator(tid("client-secret"));
    await expect(secret.inputValue()).resolves.toBe("");
    await expect(secret.getAttribute("type")).resolves.toBe("password");
    await expect(secret.getAttribute("placeholder")).resolves.toBe("stored in the system keychain — type to replace");
    // No command answer ever carried the secret into the page.
    expect(await page.evaluate(() => document.documentElement.outerHTML.includes("stored-secret"))).toBe(false);

    await page.fill(tid("server-addr"), "other.example.com");
    await page.click(tid("save-button"));
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    expect(await calls(page, "set_secret")).toHaveLength(0);

    await secret.fill("n3w-s3cret");
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("Unsaved changes");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_secret"));
    expect((await calls(page, "set_secret"))[0]!.args).toEqual({ id: "default", secret: "n3w-s3cret" });
    await expect.poll(() => secret.inputValue()).toBe("");
    await expect(secret.getAttribute("placeholder")).resolves.toBe("stored in the system keychain — type to replace");
    await expect(page.locator(tid("form-summary")).textContent()).resolves.toBe("All changes saved");
  });

  it("without a stored secret the placeholder asks for one; Forget clears a stored one", async () => {
    const p: Profile = structuredClone(PROFILE);
    p.auth.hasSecret = false;
    const page = await hx.open(seed({ profile: p }));
    await expect(page.locator(tid("client-secret")).getAttribute("placeholder")).resolves.not.toContain("stored");
    await expect(page.locator(tid("clear-secret")).isVisible()).resolves.toBe(false);

    const page2 = await hx.open();
    await page2.click(tid("clear-secret"));
    await page2.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "clear_secret"));
    await expect.poll(() => page2.locator(tid("client-secret")).getAttribute("placeholder")).not.toContain("stored");
  });

  it("keychain unavailable: banner with the fix, secret field disabled, nothing sent to set_secret", async () => {
    const detail = "The name org.freedesktop.secrets was not provided by any .service files";
    const page = await hx.open(seed({ keychain: { available: false, code: "unavailable", detail } }));
    const banner = page.locator(tid("keychain-banner"));
    await expect(banner.isVisible()).resolves.toBe(true);
    await expect(page.locator(tid("banner-text")).textContent()).resolves.toContain("install and unlock a Secret Service provider");
    // The keychain's own words, folded under the sentence.
    await expect(page.locator(tid("banner-detail")).textContent()).resolves.toBe(detail);
    await expect(page.locator(tid("client-secret")).isDisabled()).resolves.toBe(true);
    await page.fill(tid("server-addr"), "other.example.com");
    await page.click(tid("save-button"));
    await expect.poll(() => page.locator(tid("form-summary")).textContent()).toBe("All changes saved");
    expect(await calls(page, "set_secret")).toHaveLength(0);
  });

  it("keychain available: no banner", async () => {
    const page = await hx.open();
    await expect(page.locator(tid("keychain-banner")).isVisible()).resolves.toBe(false);
  });
});

describe("Test sign-in", () => {
  it("shows issuer, subject, audience and expiry; sends the form's profile and null for the stored secret", async () => {
    const page = await hx.open();
    await page.fill(tid("client-id"), "portway-ci");
    await page.click(tid("test-signin-button"));
    const result = page.locator(tid("signin-result"));
    await page.waitForSelector(`${tid("signin-result")}[data-state="ok"]`);
    const info = (await page.evaluate(() => window.__mock.state.tokenInfo));
    await expect(page.locator(tid("signin-issuer")).textContent()).resolves.toBe("https://auth.example.com/application/o/portway/");
    await expect(page.locator(tid("signin-subject")).textContent()).resolves.toBe("ak-portway-laptop");
    await expect(page.locator(tid("signin-audience")).textContent()).resolves.toBe("portway");
    await expect(page.locator(tid("signin-expiry")).textContent()).resolves.toBe(`${localTime(info.expiresAt * 1000)} (in 5 min)`);
    await expect(result.textContent()).resolves.toContain("Signed in");
    const args = (await calls(page, "test_sign_in"))[0]!.args as { profile: Profile; secret: string | null };
    expect(args.secret).toBeNull();
    expect(args.profile.auth.clientId).toBe("portway-ci");
    // Testing saves nothing.
    expect(await calls(page, "save_profile")).toHaveLength(0);
  });

  it("sends a typed secret", async () => {
    const page = await hx.open();
    await page.fill(tid("client-secret"), "typed-secret");
    await page.click(tid("test-signin-button"));
    await page.waitForSelector(`${tid("signin-result")}[data-state="ok"]`);
    expect(((await calls(page, "test_sign_in"))[0]!.args as { secret: string | null }).secret).toBe("typed-secret");
  });

  it("explains the provider's OAuth error with the form's field names and keeps the provider's text as a detail", async () => {
    const message =
      'the provider rejected the client secret, or its policy denies this client (invalid_grant: The provided authorization grant or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client): check auth.oidc.clientSecret and the application\'s policies';
    const page = await hx.open(seed({ failures: { test_sign_in: { code: "sign_in_failed", message } } }));
    await page.click(tid("test-signin-button"));
    await page.waitForSelector(`${tid("signin-result")}[data-state="error"]`);
    const plain = await page.locator(tid("signin-error")).textContent();
    expect(plain).toContain("Client secret");
    expect(plain).not.toContain("auth.oidc");
    expect(plain).not.toContain("redirection URI");
    await expect(page.locator(tid("signin-error")).getAttribute("data-oauth-error")).resolves.toBe("invalid_grant");
    await expect(page.locator(tid("signin-detail")).textContent()).resolves.toBe(message);
    await expect(page.locator(tid("signin-detail")).isVisible()).resolves.toBe(false); // folded until asked for
    await page.click(`${tid("signin-result")} summary`);
    await expect(page.locator(tid("signin-detail")).isVisible()).resolves.toBe(true);
    await expect(page.locator(tid("signin-result")).getAttribute("data-code")).resolves.toBe("sign_in_failed");
    await expect(page.locator(tid("test-signin-button")).isEnabled()).resolves.toBe(true);
  });

  it("works while the server part of the form is half-typed (sends the stored server settings)", async () => {
    const page = await hx.open();
    await page.fill(tid("server-addr"), "");
    await page.click(tid("test-signin-button"));
    await page.waitForSelector(`${tid("signin-result")}[data-state="ok"]`);
    const args = (await calls(page, "test_sign_in"))[0]!.args as { profile: Profile };
    expect(args.profile.server.addr).toBe("tunnel.example.com");
  });
});

describe("sign-in result inputs", () => {
  it("shows the token's Client ID (azp) and turns stale when the secret, client ID, endpoint or server change", async () => {
    const page = await hx.open();
    const stale = page.locator(tid("signin-stale"));
    const test = async () => {
      await page.click(tid("test-signin-button"));
      await page.waitForSelector(`${tid("signin-result")}[data-state="ok"]`);
      await expect(stale.isVisible()).resolves.toBe(false);
    };
    await test();
    await expect(page.locator(tid("signin-client-id")).textContent()).resolves.toBe("portway-laptop");
    for (const [field, value] of [
      ["client-secret", "another-secret"],
      ["client-id", "portway-other"],
      ["token-endpoint", "https://auth2.example.com/token/"],
      ["server-addr", "other.example.com"],
    ] as const) {
      const before = await page.locator(tid(field)).inputValue();
      await page.fill(tid(field), value);
      await expect(stale.isVisible()).resolves.toBe(true);
      await expect(page.locator(tid("signin-result")).getAttribute("data-stale")).resolves.toBe("true");
      // Back to what was tested: no longer stale.
      await page.fill(tid(field), before);
      await expect(stale.isVisible()).resolves.toBe(false);
    }
    // Saving a new secret also makes it stale (the stored secret changed).
    await page.fill(tid("client-secret"), "replaced");
    await page.click(tid("save-button"));
    await page.waitForFunction(() => window.__mock.calls.some((c) => c.cmd === "set_secret"));
    await expect.poll(() => page.locator(tid("client-secret")).inputValue()).toBe("");
    await expect(stale.isVisible()).resolves.toBe(true);
    await test();
  });
});
