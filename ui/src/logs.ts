// The live log view: lines from `get_logs` then the `log` event, filtered by a minimum level, with at most
// MAX_DOM lines in the DOM (the oldest go first) so a chatty engine cannot slow the window down.
import { clear, h } from "./dom";
import { formatLogLine } from "./format";
import { t } from "./i18n";
import { LOG_LEVELS, type LogLevel, type LogLine } from "./types";

export const MAX_DOM = 2000;
const MAX_KEPT = 5000;

export const levelRank = (l: LogLevel): number => LOG_LEVELS.indexOf(l);
export const atLeast = (l: LogLine, min: LogLevel): boolean => levelRank(l.level) >= levelRank(min);

const keyOf = (l: LogLine) => `${l.ts}|${l.level}|${l.target}|${l.message}`;

export class LogView {
  readonly el: HTMLElement;
  private lines: LogLine[] = [];
  private minLevel: LogLevel;
  /** Events that arrived before the initial `get_logs` answer; merged when it lands. */
  private early: LogLine[] | null = [];

  constructor(minLevel: LogLevel = "INFO") {
    this.minLevel = minLevel;
    this.el = h("div", {
      class: "log-view",
      role: "log",
      "aria-label": t("logs.aria"),
      "aria-live": "off",
      tabindex: 0,
      "data-testid": "log-view",
    });
  }

  /** The buffered history; events seen meanwhile are appended unless the history already holds them. */
  setInitial(history: LogLine[]): void {
    const early = this.early ?? [];
    this.early = null;
    const known = new Set(history.slice(-early.length - 1).map(keyOf));
    this.lines = [...history, ...early.filter((l) => !known.has(keyOf(l)))].slice(-MAX_KEPT);
    this.rerender();
  }

  push(l: LogLine): void {
    if (this.early) {
      this.early.push(l);
      return;
    }
    this.lines.push(l);
    if (this.lines.length > MAX_KEPT) this.lines.splice(0, this.lines.length - MAX_KEPT);
    if (!atLeast(l, this.minLevel)) return;
    const stick = this.atBottom();
    this.el.appendChild(this.lineEl(l));
    while (this.el.childElementCount > MAX_DOM) this.el.firstElementChild?.remove();
    if (stick) this.el.scrollTop = this.el.scrollHeight;
  }

  setMinLevel(l: LogLevel): void {
    this.minLevel = l;
    this.rerender();
  }

  /** Exactly the lines on screen, as text (what Copy puts on the clipboard). */
  visibleText(): string {
    return Array.from(this.el.children, (c) => c.textContent ?? "").join("\n");
  }

  /** Every line again (after a language change: the times follow the locale). */
  relabel(): void {
    this.el.setAttribute("aria-label", t("logs.aria"));
    this.rerender();
  }

  private rerender(): void {
    clear(this.el);
    const shown = this.lines.filter((l) => atLeast(l, this.minLevel)).slice(-MAX_DOM);
    const frag = document.createDocumentFragment();
    for (const l of shown) frag.appendChild(this.lineEl(l));
    this.el.appendChild(frag);
    this.el.scrollTop = this.el.scrollHeight;
  }

  private lineEl(l: LogLine): HTMLElement {
    return h("div", { class: `log-line lvl-${l.level.toLowerCase()}`, "data-level": l.level }, formatLogLine(l));
  }

  private atBottom(): boolean {
    return this.el.scrollHeight - this.el.scrollTop - this.el.clientHeight < 24;
  }
}
