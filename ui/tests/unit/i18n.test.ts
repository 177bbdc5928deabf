import { afterEach, describe, expect, it } from "vitest";
import { CATALOGUES, fill, locale, placeholders, resolveLanguage, setLanguage, t, type Lang } from "../../src/i18n";
import { connExplanation, connView, explainAuthError, humanBytes, proxyBadge, relativeIn } from "../../src/format";
import { describeError, keychainText, skippedList, skippedText } from "../../src/errors";
import type { Skipped } from "../../src/types";

const LANGS = Object.keys(CATALOGUES) as Lang[];

afterEach(() => setLanguage("en", "en-US"));

describe("catalogues", () => {
  const keys = (l: Lang) => Object.keys(CATALOGUES[l]).sort();

  it("both languages exist", () => expect(LANGS.sort()).toEqual(["en", "zh-CN"]));

  // tsc already refuses a zh-CN catalogue without a key; this catches what types cannot (and a cast).
  it.each(LANGS)("%s has exactly the English keys", (l) => expect(keys(l)).toEqual(keys("en")));

  it.each(LANGS)("%s has no empty text", (l) => {
    const empty = Object.entries(CATALOGUES[l]).filter(([, v]) => typeof v !== "string" || v.trim() === "");
    expect(empty.map(([k]) => k)).toEqual([]);
  });

  it("every zh-CN text has the English text's placeholders", () => {
    const bad = Object.entries(CATALOGUES.en)
      .filter(([k, v]) => placeholders(v).join() !== placeholders(CATALOGUES["zh-CN"][k as keyof typeof CATALOGUES.en]).join())
      .map(([k]) => k);
    expect(bad).toEqual([]);
  });

  it("the Chinese catalogue is Chinese: most texts hold Han characters", () => {
    const han = Object.values(CATALOGUES["zh-CN"]).filter((v) => /\p{Script=Han}/u.test(v)).length;
    expect(han / Object.keys(CATALOGUES["zh-CN"]).length).toBeGreaterThan(0.9);
  });
});

describe("t and the language choice", () => {
  it("fills placeholders and leaves a missing one visible", () => {
    expect(fill("in {a} · {b}", { a: 1 })).toBe("in 1 · {b}");
    expect(placeholders("{x} and {y} and {x}")).toEqual(["x", "y"]);
  });

  it("follows the OS locale for Auto: any zh → 简体中文, anything else → English", () => {
    for (const os of ["zh", "zh-CN", "zh-TW", "zh-Hans-CN", "zh_CN"]) expect(resolveLanguage("auto", [os])).toBe("zh-CN");
    for (const os of ["en-US", "de-DE", "ja", ""]) expect(resolveLanguage("auto", [os])).toBe("en");
    expect(resolveLanguage("auto", [])).toBe("en");
    expect(resolveLanguage("en", ["zh-CN"])).toBe("en");
    expect(resolveLanguage("zh-CN", ["en-GB"])).toBe("zh-CN");
  });

  it("switches the pure labels with the language", () => {
    setLanguage("zh-CN", "en-US");
    expect(t("conn.disconnected")).toBe("已断开");
    expect(connView({ state: "connecting", attempt: 2 }, 0).label).toBe("正在连接（第 2 次尝试）");
    expect(proxyBadge(undefined, false).label).toBe("已停用");
    expect(relativeIn(300)).toBe("5 分钟后");
    expect(explainAuthError("token endpoint answered 400: invalid_client")?.explanation).toContain("客户端密钥");
    const taken = proxyBadge({ state: "error", reason: "remote port 6000 cannot be opened on the server: in use (port already used? choose another remotePort)", bytesIn: 0, bytesOut: 0, conns: 0 }, true);
    expect(taken.label).toBe("被拒绝：此远程端口在服务器上已被占用。请换一个远程端口。");
    expect(taken.detail).toContain("port already used");
    expect(taken.original).toContain("port already used");
    // Words the app does not recognise: a lead-in, the server's words kept apart (shown under the badge).
    const odd = proxyBadge({ state: "error", reason: "proxy name [web] is reserved", bytesIn: 0, bytesOut: 0, conns: 0 }, true);
    expect([odd.label, odd.original]).toEqual(["被服务器拒绝", "proxy name [web] is reserved"]);
    // frp's refusals the app knows (frps and portway-server word them alike) are explained.
    const named = (reason: string) => proxyBadge({ state: "error", reason, bytesIn: 0, bytesOut: 0, conns: 0 }, true).label;
    expect(named("proxy [web] already exists on this server: choose another name")).toContain("已有同名代理");
    expect(named("router config conflict")).toContain("已有其他代理使用此域名");
    expect(named("new proxy [web] error")).toContain("detailedErrorsToClient");
    expect(explainAuthError("login refused by the server: register control error")?.code).toBe("loginHidden");
    expect(named("type [http] not supported when vhost http port is not set")).toContain("vhostHTTPPort");
    expect(named("subdomain is not supported because this feature is not enabled in server")).toContain("subDomainHost");
    expect(named("custom domain [a.example.com] should not belong to subdomain host [example.com]")).toContain("第一段");
    expect(connView({ state: "error", reason: "quota exceeded", retryInMs: 3000 }, 0).label).toBe("错误 — 3 秒后重试");
    expect(connExplanation({ state: "error", reason: "quota exceeded", retryInMs: null })?.explanation).toBe("与服务器的连接出错。");
    setLanguage("en");
    expect(connExplanation({ state: "error", reason: "quota exceeded", retryInMs: null })).toBeNull();
    expect(proxyBadge({ state: "error", reason: "proxy name [web] is reserved", bytesIn: 0, bytesOut: 0, conns: 0 }, true).label).toBe("Refused: proxy name [web] is reserved");
    expect(connView({ state: "disconnected" }, 0).label).toBe("Disconnected");
  });

  it("dates and numbers use the chosen language's locale, or the OS's when it speaks it", () => {
    setLanguage("en", "en-GB");
    expect(locale()).toBe("en-GB");
    setLanguage("zh-CN", "en-GB");
    expect(locale()).toBe("zh-CN");
    setLanguage("zh-CN", "zh-TW");
    expect(locale()).toBe("zh-TW");
    setLanguage("en", "zh-CN");
    expect(locale()).toBe("en-US");
    setLanguage("en", "de-DE");
    expect(humanBytes(1536)).toBe("1.5 KiB");
  });
});

describe("command errors in the chosen language", () => {
  it("English shows the backend's message as it is", () =>
    expect(describeError({ code: "no_secret", message: "Home: no secret is stored" })).toEqual({ text: "Home: no secret is stored", detail: null }));

  it("简体中文 translates by code, or by the error the app recognises, and keeps the message as the detail", () => {
    setLanguage("zh-CN", "en-US");
    expect(describeError({ code: "no_secret", message: "Home: no secret is stored" })).toEqual({
      text: "尚未保存密钥：请先输入客户端密钥（或令牌）并保存。",
      detail: "Home: no secret is stored",
    });
    const refused = describeError({ code: "sign_in_failed", message: "the provider refused the token request: invalid_scope" });
    expect(refused.text).toContain("Scope");
    expect(refused.detail).toContain("invalid_scope");
    expect(describeError({ code: "something_new", message: "x" })).toEqual({ text: "出现了错误。", detail: "x" });
    // A reason names what the code alone cannot.
    expect(describeError({ code: "no_secret", message: "visitor lab: no secret key is stored", reason: { code: "noVisitorSecretKey", visitor: "lab" } })).toEqual({
      text: "私密服务 lab 没有保存密钥：请输入服务所有者给您的密钥并保存。",
      detail: "visitor lab: no secret key is stored",
    });
  });

  it("words every import skip reason and keychain problem from the catalogue, with frp's words apart", () => {
    setLanguage("zh-CN", "en-US");
    const all: Skipped[] = [
      { code: "proxyInvalid", name: "a", detail: "bad port" },
      { code: "visitorInvalid", name: "b", detail: "no serverName" },
      { code: "typeNotOffered", name: "c", type: "ftp" },
      { code: "pluginNotSupported", name: "d", plugin: "socks5" },
      { code: "proxySettingsDropped", name: "e", settings: "healthCheck" },
      { code: "visitorSettingsDropped", name: "f", settings: "keepTunnelOpen" },
      { code: "fallbackNotImported", name: "g", fallbackTo: "relay" },
    ];
    for (const s of all) expect(skippedText(s)).toMatch(/[\u4e00-\u9fff]/);
    expect(skippedList(all).detail).toBe("a: bad port\nb: no serverName");
    expect(skippedList([all[3]!])).toEqual({ text: "代理 d：使用了 socks5 插件，本应用尚不提供（portway-client 可以运行它）", detail: null });
    expect(keychainText({ available: false, code: "refused", detail: "locked" })).toEqual({ text: t("keychain.refused"), detail: "locked" });
    expect(keychainText({ available: false, code: "unavailable", detail: null }).text).toContain("Secret Service");
  });
});
