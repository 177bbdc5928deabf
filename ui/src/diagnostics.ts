// The "Check" panel: runs the `diagnose` command (DNS, TCP connect, TLS, token request, login) with the form's
// values and shows each step's result, time and, for the first failure, what to do. The app gives it a function
// that returns what to check; everything else lives here.
import { api, toApiError } from "./api";
import { append, clear, h } from "./dom";
import type { DiagCertificate, DiagOutcome, DiagStep, DiagStepKind, Profile } from "./types";

export const STEP_TITLES: Record<DiagStepKind, string> = {
  dns: "DNS",
  tcp: "TCP connect",
  tls: "TLS",
  token: "Token request",
  login: "Login",
};

const MARKS: Record<DiagOutcome, string> = { ok: "✓", warn: "!", fail: "✗", skipped: "–" };
const OUTCOME_WORDS: Record<DiagOutcome, string> = { ok: "passed", warn: "passed with a warning", fail: "failed", skipped: "not checked" };

/** What "Check" runs with: the profile and the typed secret (`null`: the stored one). */
export interface DiagInput {
  /** The profile whose stored secret a `null` secret means. */
  id: string;
  profile: Profile;
  secret: string | null;
}

/** One line that says how the whole check went. */
export function verdict(steps: DiagStep[]): { state: "ok" | "warn" | "fail"; text: string } {
  const failed = steps.find((s) => s.outcome === "fail");
  if (failed) return { state: "fail", text: `Stopped at ${STEP_TITLES[failed.step]}: ${failed.summary}.` };
  const warned = steps.filter((s) => s.outcome === "warn");
  if (warned.length) {
    return { state: "warn", text: `The server can be reached and the login works; see the warning at ${warned.map((s) => STEP_TITLES[s.step]).join(", ")}.` };
  }
  return { state: "ok", text: "Every step passed: the server can be reached and accepts the login." };
}

/** "12 ms", "1.4 s". */
export function duration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

const dateFmt = (): Intl.DateTimeFormat => new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });

function certRows(c: DiagCertificate, now: number): HTMLElement {
  const until = dateFmt().format(new Date(c.notAfter * 1000));
  const expired = c.notAfter * 1000 < now;
  const row = (label: string, value: string, testid: string) => h("div", { class: "diag-cert-row" }, h("dt", {}, label), h("dd", { "data-testid": testid }, value));
  return h(
    "dl",
    { class: "diag-cert", "data-testid": "diag-cert" },
    row("Subject", c.subject, "diag-cert-subject"),
    row("Issuer", c.selfSigned ? `${c.issuer} (self-signed)` : c.issuer, "diag-cert-issuer"),
    row("Valid until", expired ? `${until} (expired)` : until, "diag-cert-expiry"),
    row("Trusted", `${c.trusted ? "Yes" : "No"}: ${c.trust}`, "diag-cert-trusted"),
  );
}

function stepItem(s: DiagStep, now: number): HTMLElement {
  const time = s.outcome === "skipped" ? null : h("span", { class: "diag-time", "data-testid": "diag-time" }, duration(s.millis));
  const li = h(
    "li",
    { class: `diag-step ${s.outcome}`, "data-testid": `diag-step-${s.step}`, "data-outcome": s.outcome, "data-code": s.code },
    h("span", { class: "diag-mark", "aria-hidden": "true" }, MARKS[s.outcome]),
    h(
      "div",
      { class: "diag-body" },
      h("div", { class: "diag-head" }, h("strong", {}, STEP_TITLES[s.step]), h("span", { class: "visually-hidden" }, ` ${OUTCOME_WORDS[s.outcome]}`), time),
      h("p", { class: "diag-summary", "data-testid": "diag-summary" }, s.summary),
      s.certificate ? certRows(s.certificate, now) : null,
      s.fix && s.outcome !== "ok" && s.outcome !== "skipped" ? h("p", { class: "diag-fix", "data-testid": "diag-fix" }, h("strong", {}, "What to do: "), s.fix) : null,
      s.detail && s.outcome === "fail" ? h("details", { class: "diag-detail" }, h("summary", {}, "Details"), h("pre", { "data-testid": "diag-detail" }, s.detail)) : null,
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
  private running = false;

  constructor(private readonly input: () => DiagInput | null) {
    this.button = h("button", { type: "button", "data-testid": "diag-button", onclick: () => void this.run() }, "Check");
    this.verdictEl = h("p", { class: "diag-verdict", "data-testid": "diag-verdict", role: "status", "aria-live": "polite" });
    this.list = h("ol", { class: "diag-steps", "data-testid": "diag-steps" });
    this.result = h("div", { class: "diag-result", "data-testid": "diag-result", hidden: true }, this.verdictEl, this.list);
    this.el = h(
      "section",
      { class: "card", "aria-labelledby": "sec-diagnostics", "data-testid": "section-diagnostics" },
      h("h2", { id: "sec-diagnostics" }, "Diagnostics"),
      h(
        "div",
        { class: "diag-tools" },
        this.button,
        h("p", { class: "hint" }, "Checks the way to the server one step at a time with the values in the form: DNS, TCP connect, TLS, token request, login."),
      ),
      this.result,
    );
  }

  /** Runs the check; a second click while one runs does nothing. */
  async run(): Promise<void> {
    if (this.running) return;
    const input = this.input();
    if (!input) {
      this.show("fail", "Fix the highlighted fields first: the check needs a server address and port.");
      clear(this.list);
      return;
    }
    this.running = true;
    this.button.disabled = true;
    this.button.textContent = "Checking…";
    this.show("pending", "Checking: DNS, TCP connect, TLS, token request, login…");
    clear(this.list);
    try {
      const steps = await api.diagnose(input.id, input.profile, input.secret);
      const v = verdict(steps);
      this.show(v.state, v.text);
      const now = Date.now();
      append(this.list, ...steps.map((s) => stepItem(s, now)));
    } catch (e) {
      const err = toApiError(e);
      this.show("error", err.message);
      this.result.dataset.code = err.code;
    } finally {
      this.running = false;
      this.button.disabled = false;
      this.button.textContent = "Check";
    }
  }

  private show(state: string, text: string): void {
    this.result.hidden = false;
    this.result.dataset.state = state;
    delete this.result.dataset.code;
    this.verdictEl.textContent = text;
  }
}
