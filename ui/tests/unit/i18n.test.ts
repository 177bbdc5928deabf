import { afterEach, describe, expect, it } from "vitest";
import { CATALOGUES, fill, locale, placeholders, resolveLanguage, setLanguage, t, type Lang } from "../../src/i18n";
import { connView, explainAuthError, humanBytes, proxyBadge, relativeIn } from "../../src/format";
import { describeError } from "../../src/errors";

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
    setLanguage("en");
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
  });
});
