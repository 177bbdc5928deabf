// The language setting: Auto (the OS's locale, as the webview reports it) or one of the two languages. The choice
// is an app-level option in profiles.json (get_language / set_language), so the tray and notifications, which the
// backend writes, follow it too; set_language also tells the backend the OS locale the window sees, for Auto.
import { api, hasBackend } from "./api";
import { h, uid } from "./dom";
import { toastError } from "./errors";
import { LANGUAGE_CHOICES, osLanguages, resolveLanguage, setLanguage, t, type LanguageChoice } from "./i18n";

/** Each language's name in its own script (the same in every language). */
const NAMES: Record<Exclude<LanguageChoice, "auto">, string> = { en: "English", "zh-CN": "简体中文" };

let choice: LanguageChoice = "auto";

const isChoice = (v: unknown): v is LanguageChoice => typeof v === "string" && (LANGUAGE_CHOICES as readonly string[]).includes(v);

export function languageChoice(): LanguageChoice {
  return choice;
}

/** Applies the stored choice before the first render (`stored`: the one `page_start` returned; without it, asks
 * the backend); tells the backend what the OS locale is. */
export async function initLanguage(stored?: string): Promise<void> {
  if (hasBackend()) {
    const s = stored ?? (await api.getLanguage().catch(() => "auto"));
    choice = isChoice(s) ? s : "auto";
  }
  setLanguage(resolveLanguage(choice, osLanguages()));
  if (hasBackend()) api.setLanguage(choice, osLanguages()[0] ?? "").catch(() => {});
}

/** Applies and stores a choice: the window re-renders (onLanguageChange) and the backend relabels the tray. */
export async function chooseLanguage(next: LanguageChoice): Promise<void> {
  choice = next;
  setLanguage(resolveLanguage(next, osLanguages()));
  if (!hasBackend()) return;
  try {
    await api.setLanguage(next, osLanguages()[0] ?? "");
  } catch (e) {
    toastError(e);
  }
}

/** The Options row: Auto / English / 简体中文. */
export function languagePicker(): HTMLElement {
  const id = uid("f");
  const select = h(
    "select",
    { id, "data-testid": "language-select", onchange: (ev: Event) => void chooseLanguage((ev.target as HTMLSelectElement).value as LanguageChoice) },
    ...LANGUAGE_CHOICES.map((v) => h("option", { value: v, selected: v === choice }, v === "auto" ? t("lang.auto") : NAMES[v])),
  );
  return h("div", { class: "field language-field" }, h("label", { for: id }, t("lang.label")), select);
}
