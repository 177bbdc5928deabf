// Light or dark: the OS decides (prefers-color-scheme, in style.css) unless the person picks one in Options.
// The choice is a display preference of this machine's window, kept in the webview's localStorage; forcing a
// theme sets data-theme on <html>, which style.css reads.
import { h, uid } from "./dom";
import { t, type PlainKey } from "./i18n";

export type ThemeChoice = "system" | "light" | "dark";
const KEY = "portway.theme";
const CHOICES: [ThemeChoice, PlainKey][] = [
  ["system", "theme.system"],
  ["light", "theme.light"],
  ["dark", "theme.dark"],
];

export function storedTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : "system";
  } catch {
    return "system";
  }
}

/** Applies a choice to `root` (no attribute for "system": the media query decides). */
export function applyTheme(choice: ThemeChoice, root: HTMLElement = document.documentElement): void {
  if (choice === "system") delete root.dataset.theme;
  else root.dataset.theme = choice;
}

export function setTheme(choice: ThemeChoice): void {
  try {
    if (choice === "system") localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    // No storage: the choice lasts until the window closes.
  }
  applyTheme(choice);
}

/** The Options row: a select with the three choices. */
export function themePicker(): HTMLElement {
  const id = uid("f");
  const current = storedTheme();
  const select = h(
    "select",
    { id, "data-testid": "theme-select", onchange: (ev: Event) => setTheme((ev.target as HTMLSelectElement).value as ThemeChoice) },
    ...CHOICES.map(([v, label]) => h("option", { value: v, selected: v === current }, t(label))),
  );
  return h("div", { class: "field theme-field" }, h("label", { for: id }, t("theme.label")), select);
}
