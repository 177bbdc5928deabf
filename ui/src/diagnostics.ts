// The "Check" panel: runs the `diagnose` command (DNS, TCP connect, TLS, token request, login) with the form's
// values and shows each step's result, time and, for the first failure, what to do. The app gives it a function
// that returns what to check; everything else lives here.
import { api, toApiError } from "./api";
import { describeError } from "./errors";
import { dateFormat } from "./format";
import { append, clear, h } from "./dom";
import { language, locale, lookup, t, type PlainKey } from "./i18n";
import type { DiagCertificate, DiagOutcome, DiagStep, DiagStepKind, Profile } from "./types";

const STEP_KEYS: Record<DiagStepKind, PlainKey> = {
  dns: "diag.step.dns",
  tcp: "diag.step.tcp",
  tls: "diag.step.tls",
  token: "diag.step.token",
  login: "diag.step.login",
};
/** A step's title in the chosen language. */
export const stepTitle = (k: DiagStepKind): string => t(STEP_KEYS[k]);

const MARKS: Record<DiagOutcome, string> = { ok: "✓", warn: "!", fail: "✗", skipped: "–" };
const OUTCOME_LEADS: Record<DiagOutcome, PlainKey> = { ok: "diag.lead.ok", warn: "diag.lead.warn", fail: "diag.lead.fail", skipped: "diag.lead.skipped" };
const OUTCOME_KEYS: Record<DiagOutcome, PlainKey> = { ok: "diag.outcome.ok", warn: "diag.outcome.warn", fail: "diag.outcome.fail", skipped: "diag.outcome.skipped" };

/** What "Check" runs with: the profile and the typed secret (`null`: the stored one). */
export interface DiagInput {
  /** The profile whose stored secret a `null` secret means. */
  id: string;
  profile: Profile;
  secret: string | null;
}

/**
 * A step's summary and fix in the chosen language. The engine writes them in English with the specifics (host,
 * address, the server's words); in another language the step's code picks a translated sentence and the engine's
 * text is kept as `original`, shown as a detail. A code without a translation gets a lead-in from the step's outcome.
 */
export function stepText(s: Pick<DiagStep, "step" | "outcome" | "code" | "summary" | "fix">): { summary: string; fix: string; original: string | null } {
  if (language() === "en") return { summary: s.summary, fix: s.fix, original: null };
  const key = lookup(`diag.${s.step}.${s.code}`) !== null ? `diag.${s.step}.${s.code}` : `diag.${s.code}`;
  const summary = lookup(key);
  const original = [s.summary, s.fix].filter((x) => x).join(" — ");
  // A code without a translation (a newer engine): the step's outcome as the lead-in, the engine's words as the detail.
  if (summary === null) return { summary: t(OUTCOME_LEADS[s.outcome]), fix: "", original };
  const fix = s.fix ? (lookup(`${key}.fix`) ?? s.fix) : "";
  return { summary, fix, original };
}

/** One line that says how the whole check went. */
export function verdict(steps: DiagStep[]): { state: "ok" | "warn" | "fail"; text: string } {
  const failed = steps.find((s) => s.outcome === "fail");
  if (failed) return { state: "fail", text: t("diag.verdictFail", { step: stepTitle(failed.step), summary: stepText(failed).summary }) };
  const warned = steps.filter((s) => s.outcome === "warn");
  if (warned.length) {
    return { state: "warn", text: t("diag.verdictWarn", { steps: warned.map((s) => stepTitle(s.step)).join(t("list.sep")) }) };
  }
  return { state: "ok", text: t("diag.verdictOk") };
}

/** "12 ms", "1.4 s". */
export function duration(ms: number): string {
  const n = (v: number, digits: number) => new Intl.NumberFormat(locale(), { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(v);
  return ms < 1000 ? t("diag.ms", { n: n(Math.round(ms), 0) }) : t("diag.s", { n: n(Number((ms / 1000).toFixed(1)), 1) });
}

function certRows(c: DiagCertificate, now: number): HTMLElement {
  const until = dateFormat().format(new Date(c.notAfter * 1000));
  const expired = c.notAfter * 1000 < now;
  const row = (label: string, value: string, testid: string) => h("div", { class: "diag-cert-row" }, h("dt", {}, label), h("dd", { "data-testid": testid }, value));
  return h(
    "dl",
    { class: "diag-cert", "data-testid": "diag-cert" },
    row(t("diag.cert.subject"), c.subject, "diag-cert-subject"),
    row(t("diag.cert.issuer"), c.selfSigned ? t("diag.cert.selfSigned", { issuer: c.issuer }) : c.issuer, "diag-cert-issuer"),
    row(t("diag.cert.validUntil"), expired ? t("diag.cert.expired", { date: until }) : until, "diag-cert-expiry"),
    language() === "en"
      ? row(t("diag.cert.trusted"), t(c.trusted ? "diag.cert.yes" : "diag.cert.no", { trust: c.trust }), "diag-cert-trusted")
      : // The engine's English words about the trust go under the translated yes or no.
        h(
          "div",
          { class: "diag-cert-row" },
          h("dt", {}, t("diag.cert.trusted")),
          h("dd", { "data-testid": "diag-cert-trusted" }, t(c.trusted ? "diag.cert.yesPlain" : "diag.cert.noPlain"), " ", h("small", { class: "badge-detail", "data-testid": "diag-cert-trust" }, c.trust)),
        ),
  );
}

function stepItem(s: DiagStep, now: number): HTMLElement {
  const text = stepText(s);
  const detail = [text.original, s.outcome === "fail" ? s.detail : ""].filter((x) => x).join("\n");
  const time = s.outcome === "skipped" ? null : h("span", { class: "diag-time", "data-testid": "diag-time" }, duration(s.millis));
  const li = h(
    "li",
    { class: `diag-step ${s.outcome}`, "data-testid": `diag-step-${s.step}`, "data-outcome": s.outcome, "data-code": s.code },
    h("span", { class: "diag-mark", "aria-hidden": "true" }, MARKS[s.outcome]),
    h(
      "div",
      { class: "diag-body" },
      h("div", { class: "diag-head" }, h("strong", {}, stepTitle(s.step)), h("span", { class: "visually-hidden" }, ` ${t(OUTCOME_KEYS[s.outcome])}`), time),
      h("p", { class: "diag-summary", "data-testid": "diag-summary" }, text.summary),
      s.certificate ? certRows(s.certificate, now) : null,
      text.fix && s.outcome !== "ok" && s.outcome !== "skipped" ? h("p", { class: "diag-fix", "data-testid": "diag-fix" }, h("strong", {}, t("diag.whatToDo")), text.fix) : null,
      detail ? h("details", { class: "diag-detail" }, h("summary", {}, t("common.details")), h("pre", { "data-testid": "diag-detail" }, detail)) : null,
    ),
  );
  return li;
}

export class DiagnosticsPanel {
  readonly el: HTMLElement;
  private readonly button: HTMLButtonElement;
  private readonly result: HTMLElement;
  private readonly verdictEl: HTMLElement;
  private readonly list: HTMLOListElement;
  private readonly title: HTMLElement;
  private readonly hint: HTMLElement;
  private running = false;
  /** What the result shows, so a language change can render it again. */
  private shown: { steps: DiagStep[] } | { state: string; text: () => string } | null = null;

  constructor(private readonly input: () => DiagInput | null) {
    this.button = h("button", { type: "button", "data-testid": "diag-button", onclick: () => void this.run() });
    this.verdictEl = h("p", { class: "diag-verdict", "data-testid": "diag-verdict", role: "status", "aria-live": "polite" });
    this.list = h("ol", { class: "diag-steps", "data-testid": "diag-steps" });
    this.result = h("div", { class: "diag-result", "data-testid": "diag-result", hidden: true }, this.verdictEl, this.list);
    this.title = h("h2", { id: "sec-diagnostics" });
    this.hint = h("p", { class: "hint" });
    this.el = h(
      "section",
      { class: "card", "aria-labelledby": "sec-diagnostics", "data-testid": "section-diagnostics" },
      this.title,
      h("div", { class: "diag-tools" }, this.button, this.hint),
      this.result,
    );
    this.relabel();
  }

  /** Every text again, in the current language (the result too). */
  relabel(): void {
    this.title.textContent = t("diag.title");
    this.hint.textContent = t("diag.hint");
    this.button.textContent = this.running ? t("diag.checking") : t("diag.check");
    if (this.running) this.verdictEl.textContent = t("diag.checkingSteps");
    else if (this.shown && "steps" in this.shown) this.showSteps(this.shown.steps);
    else if (this.shown) this.show(this.shown.state, this.shown.text());
  }

  /** Runs the check; a second click while one runs does nothing. */
  async run(): Promise<void> {
    if (this.running) return;
    const input = this.input();
    if (!input) {
      this.shown = { state: "fail", text: () => t("diag.fixFieldsFirst") };
      this.show("fail", t("diag.fixFieldsFirst"));
      clear(this.list);
      return;
    }
    this.running = true;
    this.button.disabled = true;
    this.button.textContent = t("diag.checking");
    this.show("pending", t("diag.checkingSteps"));
    clear(this.list);
    try {
      const steps = await api.diagnose(input.id, input.profile, input.secret);
      this.shown = { steps };
      this.showSteps(steps);
    } catch (e) {
      const err = toApiError(e);
      const text = () => describeError(err).text;
      this.shown = { state: "error", text };
      this.show("error", text());
      this.result.dataset.code = err.code;
    } finally {
      this.running = false;
      this.button.disabled = false;
      this.button.textContent = t("diag.check");
    }
  }

  private showSteps(steps: DiagStep[]): void {
    const v = verdict(steps);
    this.show(v.state, v.text);
    const now = Date.now();
    clear(this.list);
    append(this.list, ...steps.map((s) => stepItem(s, now)));
  }

  private show(state: string, text: string): void {
    this.result.hidden = false;
    this.result.dataset.state = state;
    delete this.result.dataset.code;
    this.verdictEl.textContent = text;
  }
}
