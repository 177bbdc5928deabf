// The window's two languages: English and 简体中文. `t(key, params)` looks a key up in the current language's
// catalogue and fills its {placeholders}. The English catalogue (en.ts) defines the keys; the Chinese one is typed
// against it, so `tsc` fails when a key is missing there, and tests/unit/i18n.test.ts fails on an empty value or
// mismatched placeholders. No dependency: Intl does dates and numbers, with `locale()`.
import { en } from "./en";
import { zhCN } from "./zh-CN";

export type Lang = "en" | "zh-CN";
/** What the person picked in Options: follow the OS, or one language. */
export type LanguageChoice = "auto" | Lang;
export const LANGUAGE_CHOICES: readonly LanguageChoice[] = ["auto", "en", "zh-CN"];

export type Key = keyof typeof en;
/** A catalogue: every key of the English one, as text. */
export type Catalogue = { readonly [K in Key]: string };

/** The `{name}` placeholders of a text, as a union of names. */
type Placeholders<S extends string> = S extends `${string}{${infer P}}${infer Rest}` ? P | Placeholders<Rest> : never;
export type Params<K extends Key> = Record<Placeholders<(typeof en)[K]>, string | number>;
type Args<K extends Key> = [Placeholders<(typeof en)[K]>] extends [never] ? [] : [params: Params<K>];
/** The keys whose text has no placeholder (for tables of keys: `t(table[x])` then needs no parameters). */
export type PlainKey = { [K in Key]: [Placeholders<(typeof en)[K]>] extends [never] ? K : never }[Key];

export const CATALOGUES: Record<Lang, Catalogue> = { en, "zh-CN": zhCN };

let current: Lang = "en";
let osLocale: string | undefined;
const listeners = new Set<() => void>();

/** The language for a choice: zh, zh-CN, zh-TW, zh-Hans-… → 简体中文; anything else → English. */
export function resolveLanguage(choice: LanguageChoice, osLanguages: readonly string[]): Lang {
  if (choice !== "auto") return choice;
  const first = osLanguages.find((l) => l.trim() !== "") ?? "en";
  return /^zh\b/i.test(first.replace("_", "-")) ? "zh-CN" : "en";
}

/** The OS's preferred languages as the webview reports them (navigator.languages). */
export function osLanguages(): string[] {
  if (typeof navigator === "undefined") return [];
  const list = navigator.languages?.length ? [...navigator.languages] : [navigator.language];
  return list.filter((l): l is string => typeof l === "string");
}

export function language(): Lang {
  return current;
}

/**
 * The BCP 47 locale for dates and numbers: the OS's own locale when it speaks the chosen language (so an en-GB
 * system keeps its 24-hour clock in English), else the language's usual one.
 */
export function locale(): string {
  const os = osLocale ?? osLanguages()[0];
  if (os && os.toLowerCase().split(/[-_]/)[0] === current.toLowerCase().split("-")[0]) return os.replace("_", "-");
  return current === "zh-CN" ? "zh-CN" : "en-US";
}

/** Switches the language; listeners re-render. `os` overrides the OS locale (tests). */
export function setLanguage(lang: Lang, os?: string): void {
  const changed = lang !== current;
  current = lang;
  if (os !== undefined) osLocale = os;
  if (typeof document !== "undefined") document.documentElement.lang = lang;
  if (changed) for (const l of listeners) l();
}

/** Called after every language change. Returns the unsubscribe function. */
export function onLanguageChange(cb: () => void): () => void {
  listeners.add(cb);
  return () => listeners.delete(cb);
}

/** Fills `{name}` placeholders; a missing parameter stays visible as `{name}` rather than vanishing. */
export function fill(text: string, params: Record<string, string | number> = {}): string {
  return text.replace(/\{(\w+)\}/g, (m, name: string) => (name in params ? String(params[name]) : m));
}

/** The text of `key` in the current language, with its placeholders filled. */
export function t<K extends Key>(key: K, ...args: Args<K>): string {
  const text = CATALOGUES[current][key] ?? en[key];
  return fill(text, (args[0] ?? {}) as Record<string, string | number>);
}

/** The placeholder names of a text, sorted (for the catalogue test). */
export function placeholders(text: string): string[] {
  return [...new Set(Array.from(text.matchAll(/\{(\w+)\}/g), (m) => m[1]!))].sort();
}

/** The text of a key built at run time (e.g. from a code the engine sends), or null when there is no such key. */
export function lookup(key: string, params: Record<string, string | number> = {}): string | null {
  if (!Object.prototype.hasOwnProperty.call(en, key)) return null;
  return fill(CATALOGUES[current][key as Key], params);
}

/**
 * Static texts that outlive a language change: an element with `data-i18n="key"` gets the key's text as its
 * content; `data-i18n-aria-label`, `data-i18n-title` and `data-i18n-placeholder` set those attributes.
 */
export function relabelTree(root: Element): void {
  const all = (sel: string): Element[] => [...(root.matches(sel) ? [root] : []), ...root.querySelectorAll(sel)];
  for (const el of all("[data-i18n]")) el.textContent = lookup(el.getAttribute("data-i18n") ?? "") ?? el.textContent;
  for (const attr of ["aria-label", "title", "placeholder"]) {
    for (const el of all(`[data-i18n-${attr}]`)) {
      const text = lookup(el.getAttribute(`data-i18n-${attr}`) ?? "");
      if (text !== null) el.setAttribute(attr, text);
    }
  }
}
