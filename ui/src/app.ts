// The main window. The form is built once per loaded profile and edits a `ProfileForm` in place; status and
// log events only touch the header, the proxy badges and the log view, so typing is never interrupted.
import { api, hasBackend, toApiError } from "./api";
import { append, clear, h, uid, type Child } from "./dom";
import {
  fromProfile,
  isValid,
  newProxy,
  proxyField,
  sameProfile,
  toProfile,
  validate,
  typeFields,
  type Errors,
  type ProfileForm,
  type ProxyFieldName,
  type ProxyForm,
} from "./form";
import { connExplanation, connView, engineRuns, explainAuthError, expiryLabel, proxyBadge, publicAddrs, trafficLabel, type AuthExplanation, type ProxyBadge } from "./format";
import { DiagnosticsPanel, type DiagInput } from "./diagnostics";
import { themePicker } from "./theme";
import { describeError, keychainText, skippedList, toastError } from "./errors";
import { isProviderCode } from "./format";
import { onLanguageChange, t, type PlainKey } from "./i18n";
import { initLanguage, languagePicker } from "./language";
import { LogView } from "./logs";
import { ProfileBar } from "./profiles";
import { secretFieldView, secretForTest, secretToStore, storedPlaceholder } from "./secret";
import { mountToasts, toast } from "./toast";
import { VisitorList, hasTypedSecretKeys, storeTypedSecretKeys } from "./visitor-list";
import { secretFieldLabel, visitorFieldName } from "./visitors";
import { LOG_LEVELS, PROXY_TYPES, type KeychainStatus, type PageStart, type ProxyType, type LogLevel, type Profile, type Status, type TokenInfo } from "./types";

const DEFAULT_PROFILE: Profile = {
  server: { addr: "", port: 7000, protocol: "tcp", tls: false, user: "", tcpMux: true },
  auth: { method: "oidc", tokenEndpointUrl: "", clientId: "", audience: "", scope: "", hasSecret: false },
  proxies: [],
  options: { connectOnLaunch: false, startMinimized: false, launchAtLogin: false },
};

const TYPE_LABELS: Record<Exclude<ProxyType, "stcp" | "sudp" | "xtcp">, string> = { tcp: "TCP", udp: "UDP", http: "HTTP", https: "HTTPS", tcpmux: "TCPMUX (HTTP CONNECT)" };
/** A proxy type's label (the secret types' in the current language). */
const typeLabel = (x: ProxyType): string => (x === "stcp" ? t("secret.typeStcp") : x === "sudp" ? t("secret.typeSudp") : x === "xtcp" ? t("secret.typeXtcp") : TYPE_LABELS[x]);
/** The summary's name of a secret proxy's own fields (`proxy.<key>.secretKey` / `.allowUsers`), else null. */
const secretFieldName = (k: string): string | null => (/^proxy\.\d+\.(secretKey|allowUsers)$/.test(k) ? secretFieldLabel(k.split(".").pop()!) : null);

/** Human names of form fields, for the "fix these fields" summary. */
const FIELD_NAMES: Record<string, PlainKey> = {
  addr: "field.addr",
  port: "field.port",
  tokenEndpointUrl: "field.tokenEndpointUrl",
  clientId: "field.clientId",
  name: "field.name",
  localIp: "field.localIp",
  localPort: "field.localPort",
  remotePort: "field.remotePort",
  customDomains: "field.customDomains",
  subdomain: "field.subdomain",
  locations: "field.locations",
  httpUser: "field.httpUser",
  httpPassword: "field.httpPassword",
  hostHeaderRewrite: "field.hostHeaderRewrite",
};

interface FieldReg {
  input: HTMLElement;
  err: HTMLElement;
  /** Show the error even before the field was touched (e.g. a bad value came from an import). */
  hasValue: () => boolean;
}

export class App {
  private saved: Profile = DEFAULT_PROFILE;
  private hasSecret = false;
  private form: ProfileForm = fromProfile(DEFAULT_PROFILE);
  private errors: Errors = {};
  private touched = new Set<string>();
  private fields = new Map<string, FieldReg>();
  private keychain: KeychainStatus = { available: true, code: null, detail: null };
  private status: Status = { conn: { state: "disconnected" }, proxies: {} };
  private retryDeadline: number | null = null;
  private tick: number | undefined;
  private busy = { save: false, conn: false, signin: false };
  /** Bumped whenever the stored secret changes (saved or forgotten): a sign-in result before it is stale. */
  private secretVersion = 0;
  /** The inputs the shown sign-in result was obtained with (null: no result on screen). */
  private signinInputs: string | null = null;

  // Elements that change after the first render.
  private readonly root: HTMLElement;
  private connState!: HTMLElement;
  private connButton!: HTMLButtonElement;
  private banner!: HTMLElement;
  private formHost!: HTMLElement;
  private proxyList!: HTMLElement;
  private secretInput!: HTMLInputElement;
  private secretLabel!: HTMLElement;
  private secretHint!: HTMLElement;
  private clearSecretBtn!: HTMLButtonElement;
  private oidcOnly: HTMLElement[] = [];
  private signinBtn!: HTMLButtonElement;
  private signinResult!: HTMLElement;
  private signinStale!: HTMLElement;
  private connExplain!: HTMLElement;
  private reconnectNote!: HTMLElement;
  private saveBtn!: HTMLButtonElement;
  private summary!: HTMLElement;
  private exportDialog!: HTMLDialogElement;
  private readonly logs = new LogView("INFO");
  private readonly diag = new DiagnosticsPanel(() => this.diagInput());
  /** The profile the form edits (its id); the bar lists them all. */
  private id = "";
  private readonly bar = new ProfileBar({ select: (id) => this.selectProfile(id) });
  private readonly visitors = new VisitorList({
    field: (key, id, label, input, cls, hasValue) => this.wrapField(key, id, label, input, cls, hasValue),
    touch: (key) => this.touched.add(key),
    changed: () => this.update(),
    profileId: () => this.id,
    savedVisitors: () => this.saved.visitors ?? [],
    stored: (p) => (this.saved = p),
    fail: (e) => this.fail(e),
    copy: (text) => copyText(text),
  });

  constructor(root: HTMLElement) {
    this.root = root;
  }

  /** Two IPC round trips before the first picture: the event subscriptions, then `page_start` (everything the
   * page shows first, from the backend's memory; its keychain lookups started when the window was built). */
  async start(): Promise<void> {
    let first: PageStart | null = null;
    if (hasBackend()) {
      // Subscribe before the first read so no event falls between the read and the subscription.
      await Promise.all([
        api.onStatus((s) => this.onStatusEvent(s)).catch((e) => this.fail(e)),
        api.onLog((l) => this.logs.push(l)).catch((e) => this.fail(e)),
      ]);
      first = await api.pageStart().catch((e) => (this.fail(e), null));
    }
    await initLanguage(first?.language);
    // The bar, the Check panel and the log view were built before the language was known.
    this.bar.relabel();
    this.diag.relabel();
    this.logs.relabel();
    onLanguageChange(() => this.relabel());
    this.renderShell();
    if (!hasBackend()) {
      this.showBanner(t("app.noBackend"));
      return;
    }
    if (!first) return;
    this.id = first.profiles[0]?.id ?? "";
    this.bar.set(first.profiles, this.id);
    this.setKeychain(first.keychain);
    if (first.profile) this.loadProfile(first.profile, true);
    if (first.status) this.setStatus(first.status);
    this.logs.setInitial(first.logs);
  }

  /** A status event of any profile: its tab follows; the header and rows only for the profile shown. */
  private onStatusEvent(s: Status): void {
    this.bar.updateStatus(s);
    if (s.profileId === undefined || s.profileId === this.id) this.setStatus(s);
  }

  /** Shows profile `id` in the form. Unsaved changes of the one shown are dropped only when the person agrees. */
  private async selectProfile(id: string): Promise<boolean> {
    if (this.id && this.isDirty() && !window.confirm(t("app.discardConfirm"))) return false;
    try {
      const [profile, status] = await Promise.all([api.getProfile(id), api.getStatus(id)]);
      this.id = id;
      this.secretInput.value = "";
      this.loadProfile(profile, true);
      this.setStatus(status);
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    }
  }

  // ---------------------------------------------------------------- shell

  private renderShell(): void {
    this.connState = h("span", { class: "conn-state", "data-testid": "conn-state", role: "status", "aria-live": "polite" });
    this.connButton = h("button", {
      type: "button",
      class: "primary",
      "data-testid": "connect-button",
      onclick: () => void this.onConnectButton(),
    });
    const header = h(
      "header",
      { class: "topbar" },
      h("div", { class: "brand" }, h("span", { class: "logo", "aria-hidden": "true" }), "Portway"),
      h("div", { class: "conn" }, h("span", { class: "dot", "aria-hidden": "true" }), this.connState),
      this.connButton,
    );
    this.banner = h("div", { class: "banner", role: "alert", "data-testid": "keychain-banner", hidden: true });
    this.reconnectNote = h(
      "div",
      { class: "banner reconnect", role: "status", "data-testid": "reconnect-needed", hidden: true },
      t("app.reconnectNeeded"),
    );
    this.connExplain = h("div", { class: "banner conn-explain", role: "status", "data-testid": "conn-explain", hidden: true });
    this.formHost = h("main", { class: "content" });

    const importInput = h("input", {
      type: "file",
      accept: ".toml,.ini,.yaml,.yml,.json,text/plain",
      class: "visually-hidden",
      id: "import-file",
      "data-testid": "import-file",
      "aria-label": t("app.importAria"),
      onchange: (ev: Event) => void this.onImport(ev.target as HTMLInputElement),
    });
    this.saveBtn = h("button", { type: "button", class: "primary", "data-testid": "save-button", onclick: () => void this.save() }, t("app.save"));
    this.summary = h("span", { class: "summary", "data-testid": "form-summary", "aria-live": "polite" });
    const footer = h(
      "footer",
      { class: "actions" },
      this.summary,
      h("span", { class: "spacer" }),
      h("label", { class: "button", for: "import-file", title: t("app.importTitle") }, t("app.import"), importInput),
      h("button", { type: "button", "data-testid": "export-button", onclick: () => void this.onExport() }, t("app.export")),
      this.saveBtn,
    );
    this.exportDialog = h("dialog", { class: "export", "aria-label": t("app.exportedAria"), "data-testid": "export-dialog" });

    clear(this.root);
    append(this.root, header, this.bar.el, this.banner, this.reconnectNote, this.connExplain, this.formHost, footer, this.exportDialog);
    mountToasts(this.root);
    this.renderForm();
    this.renderConn();
  }

  /** After a language change: every text again, keeping what was typed (the form model, the secret field). */
  private relabel(): void {
    const secret = this.secretInput?.value ?? "";
    this.renderShell();
    this.secretInput.value = secret;
    this.bar.relabel();
    this.diag.relabel();
    this.logs.relabel();
    if (!hasBackend()) this.showBanner(t("app.noBackend"));
    else this.setKeychain(this.keychain);
    this.renderConn(); // not setStatus: a retry countdown keeps its deadline
    this.renderBadges();
    this.update();
  }

  /** The banner at the top: a sentence, and the backend's own words under it (folded). */
  private showBanner(text: string, detail: string | null = null): void {
    clear(this.banner);
    append(
      this.banner,
      h("span", { "data-testid": "banner-text" }, text),
      detail ? h("details", { class: "provider-detail" }, h("summary", {}, t("common.details")), h("p", { "data-testid": "banner-detail" }, detail)) : null,
    );
    this.banner.hidden = false;
  }

  private fail(e: unknown): void {
    toastError(e);
  }

  // ---------------------------------------------------------------- connection

  private setStatus(s: Status): void {
    this.status = s;
    const c = s.conn;
    this.retryDeadline = c.state === "error" && c.retryInMs !== null ? Date.now() + c.retryInMs : null;
    window.clearInterval(this.tick);
    this.tick = undefined;
    if (this.retryDeadline !== null) this.tick = window.setInterval(() => this.renderConn(), 1000);
    this.renderConn();
    this.renderBadges();
    this.visitors.setStatus(s);
  }

  private renderConn(): void {
    const v = connView(this.status.conn, Date.now(), this.retryDeadline);
    this.connState.textContent = v.label;
    this.connState.title = v.label;
    this.root.dataset.conn = this.status.conn.state;
    this.root.dataset.tone = v.tone;
    this.connButton.textContent = v.action === "connect" ? t("app.connect") : t("app.disconnect");
    this.connButton.dataset.action = v.action;
    this.connButton.classList.toggle("danger", v.action === "disconnect");
    this.reconnectNote.hidden = !(this.status.reconnectNeeded && engineRuns(this.status.conn));
    const explained = connExplanation(this.status.conn);
    this.connExplain.hidden = explained === null;
    if (!explained) delete this.connExplain.dataset.reason;
    const reason = this.status.conn.state === "error" ? this.status.conn.reason : "";
    if (explained && this.connExplain.dataset.reason !== reason) {
      // Rebuilt only when the reason changes: the countdown re-renders every second and must not fold the detail.
      this.connExplain.dataset.reason = reason;
      clear(this.connExplain);
      append(this.connExplain, ...explanationView(explained, reason, "conn"));
    }
    this.connButton.disabled = this.busy.conn || this.busy.save || (v.action === "connect" && !isValid(this.errors));
    if (this.retryDeadline !== null && Date.now() > this.retryDeadline + 1000) {
      window.clearInterval(this.tick); // the engine should have moved on; stop counting at 0s
      this.tick = undefined;
    }
  }

  private async onConnectButton(): Promise<void> {
    const action = connView(this.status.conn, Date.now(), this.retryDeadline).action;
    this.busy.conn = true;
    this.renderConn();
    try {
      if (action === "connect") {
        // Connect uses the stored profile: store what is on screen first.
        if (this.isDirty() && !(await this.save())) return;
        await api.connect(this.id);
      } else {
        await api.disconnect(this.id);
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.busy.conn = false;
      this.renderConn();
    }
  }

  // ---------------------------------------------------------------- keychain and secret

  private setKeychain(k: KeychainStatus): void {
    this.keychain = k;
    if (!k.available) {
      const d = keychainText(k);
      this.showBanner(d.text, d.detail);
    } else {
      this.banner.hidden = true;
    }
    this.renderSecretField();
  }

  private renderSecretField(): void {
    const v = secretFieldView({ method: this.form.method, hasSecret: this.hasSecret, keychainAvailable: this.keychain.available });
    this.secretLabel.textContent = v.label;
    this.secretInput.placeholder = v.placeholder;
    this.secretInput.disabled = v.disabled;
    if (v.disabled) this.secretInput.value = "";
    this.secretHint.textContent = v.hint;
    this.clearSecretBtn.hidden = !v.canClear;
  }

  private async onClearSecret(): Promise<void> {
    try {
      await api.clearSecret(this.id);
      this.hasSecret = false;
      this.secretVersion++;
      this.renderSecretField();
      this.update();
      toast(t("app.secretForgotten"));
    } catch (e) {
      this.fail(e);
    }
  }

  // ---------------------------------------------------------------- form

  /** Replace the form with a profile. `asSaved`: it is what the backend stores (else it shows as unsaved). */
  private loadProfile(p: Profile, asSaved: boolean): void {
    if (asSaved) this.saved = p;
    this.hasSecret = p.auth.hasSecret;
    this.form = fromProfile(p);
    this.touched.clear();
    this.renderForm();
  }

  private renderForm(): void {
    this.fields.clear();
    this.oidcOnly = [];

    const server = section(
      t("app.server"),
      "server",
      h(
        "div",
        { class: "grid" },
        this.textField("addr", t("app.addr"), "server-addr", { placeholder: "tunnel.example.com", autocomplete: "off", spellcheck: "false" }, "wide"),
        this.textField("port", t("app.port"), "server-port", { inputmode: "numeric", placeholder: "7000" }),
        this.selectField("protocol", t("app.transport"), "server-transport", [
          ["tcp", "TCP"],
          ["websocket", "WebSocket"],
          ["wss", t("app.wss")],
          ["quic", "QUIC"],
        ]),
        this.checkField("tls", t("app.useTls"), "server-tls"),
        this.textField("user", t("app.user"), "server-user", { placeholder: t("app.userPlaceholder"), autocomplete: "off", spellcheck: "false" }),
        this.checkField("tcpMux", t("app.tcpMux"), "server-tcpmux"),
      ),
    );

    // Authentication
    this.secretLabel = h("span");
    const secretId = uid("f");
    const secretHintId = uid("hint");
    this.secretInput = h("input", {
      id: secretId,
      type: "password",
      autocomplete: "off",
      spellcheck: "false",
      value: "",
      "data-testid": "client-secret",
      "aria-describedby": secretHintId,
      oninput: () => this.update(),
    });
    this.secretHint = h("p", { class: "hint", id: secretHintId });
    this.clearSecretBtn = h(
      "button",
      { type: "button", class: "link", "data-testid": "clear-secret", onclick: () => void this.onClearSecret() },
      t("app.forgetSecret"),
    );
    const secretField = h(
      "div",
      { class: "field wide" },
      h("label", { for: secretId }, this.secretLabel),
      this.secretInput,
      h("div", { class: "hint-row" }, this.secretHint, this.clearSecretBtn),
    );

    this.signinBtn = h(
      "button",
      { type: "button", "data-testid": "test-signin-button", onclick: () => void this.onTestSignIn() },
      t("app.testSignIn"),
    );
    this.signinResult = h("div", { class: "signin-result", "data-testid": "signin-result", role: "status", "aria-live": "polite", hidden: true });
    this.signinStale = h(
      "p",
      { class: "hint stale", "data-testid": "signin-stale", hidden: true },
      t("app.signinStale"),
    );
    this.signinInputs = null;

    const oidcFields = [
      this.textField("tokenEndpointUrl", t("app.tokenEndpointUrl"), "token-endpoint", {
        type: "url",
        placeholder: "https://auth.example.com/application/o/token/",
        autocomplete: "off",
        spellcheck: "false",
      }, "wide"),
      this.textField("clientId", t("app.clientId"), "client-id", { autocomplete: "off", spellcheck: "false" }),
      this.textField("audience", t("app.audience"), "audience", { autocomplete: "off", spellcheck: "false" }),
      this.textField("scope", t("app.scope"), "scope", { autocomplete: "off", spellcheck: "false", placeholder: t("app.scopePlaceholder") }),
    ];
    this.oidcOnly.push(...oidcFields);
    const signinRow = h("div", { class: "signin wide" }, this.signinBtn, this.signinResult, this.signinStale);
    this.oidcOnly.push(signinRow);

    const auth = section(
      t("app.auth"),
      "auth",
      h(
        "div",
        { class: "grid" },
        this.selectField("method", t("app.method"), "auth-method", [
          ["oidc", t("app.methodOidc")],
          ["token", t("app.methodToken")],
        ]),
        ...oidcFields,
        secretField,
        signinRow,
      ),
    );

    // Proxies
    this.proxyList = h("div", { class: "proxy-list", "data-testid": "proxy-list" });
    const proxies = section(
      t("app.proxies"),
      "proxies",
      this.proxyList,
      h("button", { type: "button", "data-testid": "add-proxy", onclick: () => this.onAddProxy() }, t("app.addProxy")),
    );

    const options = section(
      t("app.options"),
      "options",
      h(
        "div",
        { class: "checks" },
        this.checkField("connectOnLaunch", t("app.optConnectOnLaunch"), "opt-connect-on-launch"),
        this.checkField("startMinimized", t("app.optStartMinimized"), "opt-start-minimized"),
        this.checkField("launchAtLogin", t("app.optLaunchAtLogin"), "opt-launch-at-login"),
      ),
      themePicker(),
      languagePicker(),
    );

    const levelId = uid("f");
    const levelSelect = h(
      "select",
      { id: levelId, "data-testid": "log-level", onchange: (ev: Event) => this.logs.setMinLevel((ev.target as HTMLSelectElement).value as LogLevel) },
      ...LOG_LEVELS.map((l) => h("option", { value: l, selected: l === "INFO" }, l)),
    );
    const logs = section(
      t("app.logs"),
      "logs",
      h(
        "div",
        { class: "log-tools" },
        h("label", { for: levelId }, t("app.minLevel")),
        levelSelect,
        h("span", { class: "spacer" }),
        h("button", { type: "button", "data-testid": "copy-logs", onclick: () => void this.onCopyLogs() }, t("app.copy")),
      ),
      this.logs.el,
    );

    clear(this.formHost);
    append(this.formHost, server, auth, this.diag.el, proxies, this.visitors.el, options, logs);
    for (const k of [...this.fields.keys()]) if (k.startsWith("visitor.")) this.fields.delete(k);
    this.visitors.render(this.form.visitors);
    this.renderProxies();
    this.renderMethod();
    this.renderSecretField();
    this.update();
  }

  private textField(
    key: "addr" | "port" | "user" | "tokenEndpointUrl" | "clientId" | "audience" | "scope",
    label: string,
    testid: string,
    attrs: Record<string, string> = {},
    cls = "",
  ): HTMLElement {
    const id = uid("f");
    const input = h("input", { type: "text", ...attrs, id, value: this.form[key], "data-testid": testid });
    input.addEventListener("input", () => {
      this.form[key] = input.value;
      this.touched.add(key);
      this.update();
    });
    input.addEventListener("blur", () => {
      this.touched.add(key);
      this.update();
    });
    return this.wrapField(key, id, label, input, cls, () => this.form[key] !== "");
  }

  private wrapField(key: string, id: string, label: string, input: HTMLElement, cls: string, hasValue: () => boolean): HTMLElement {
    const errId = `${id}-err`;
    const err = h("p", { class: "error", id: errId, "data-testid": `error-${key}`, hidden: true });
    input.setAttribute("aria-describedby", errId);
    this.fields.set(key, { input, err, hasValue });
    return h("div", { class: `field ${cls}` }, h("label", { for: id }, label), input, err);
  }

  private selectField(key: "protocol" | "method", label: string, testid: string, choices: [string, string][]): HTMLElement {
    const id = uid("f");
    const sel = h("select", { id, "data-testid": testid }, ...choices.map(([v, t]) => h("option", { value: v, selected: this.form[key] === v }, t)));
    sel.addEventListener("change", () => {
      (this.form[key] as string) = sel.value;
      if (key === "method") {
        this.renderMethod();
        this.renderSecretField();
      }
      this.update();
    });
    return h("div", { class: "field" }, h("label", { for: id }, label), sel);
  }

  private checkField(key: "tls" | "tcpMux" | "connectOnLaunch" | "startMinimized" | "launchAtLogin", label: string, testid: string): HTMLElement {
    const id = uid("f");
    const box = h("input", { type: "checkbox", id, checked: this.form[key], "data-testid": testid });
    box.addEventListener("change", () => {
      this.form[key] = box.checked;
      this.update();
    });
    return h("div", { class: "field check" }, box, h("label", { for: id }, label));
  }

  private renderMethod(): void {
    const oidc = this.form.method === "oidc";
    for (const el of this.oidcOnly) el.hidden = !oidc;
  }

  /** Re-validate and refresh everything derived from the form: messages, buttons, summary. */
  private update(): void {
    this.errors = validate(this.form);
    for (const [key, reg] of this.fields) {
      const msg = this.errors[key];
      const show = msg !== undefined && (this.touched.has(key) || reg.hasValue());
      reg.err.textContent = show ? msg : "";
      reg.err.hidden = !show;
      if (show) reg.input.setAttribute("aria-invalid", "true");
      else reg.input.removeAttribute("aria-invalid");
    }
    const valid = isValid(this.errors);
    this.saveBtn.disabled = !valid || this.busy.save;
    const authOk = !this.errors.tokenEndpointUrl && !this.errors.clientId;
    this.signinBtn.disabled = !authOk || this.busy.signin;
    const stale = this.signinInputs !== null && !this.busy.signin && this.signinInputs !== this.currentSigninInputs();
    this.signinStale.hidden = !stale;
    if (stale) this.signinResult.dataset.stale = "true";
    else delete this.signinResult.dataset.stale;

    if (!valid) {
      const names = [...new Set(Object.keys(this.errors).map((k) => visitorFieldName(k) ?? secretFieldName(k) ?? fieldName(k.split(".").pop() ?? k)))];
      this.summary.textContent = t("app.toSaveFix", { fields: names.join(t("list.sep")) });
      this.summary.dataset.state = "invalid";
    } else if (this.isDirty()) {
      this.summary.textContent = t("app.unsaved");
      this.summary.dataset.state = "dirty";
    } else {
      this.summary.textContent = t("app.allSaved");
      this.summary.dataset.state = "saved";
    }
    this.renderConn();
  }

  private isDirty(): boolean {
    return (
      !sameProfile(toProfile(this.form, this.hasSecret), this.saved) ||
      this.secretInput.value !== "" ||
      this.form.proxies.some((p) => p.httpPassword !== "") ||
      hasTypedSecretKeys(this.form)
    );
  }

  /** Store the form (and a typed secret). Returns false when nothing was stored. */
  private async save(): Promise<boolean> {
    this.update();
    if (!isValid(this.errors)) return false;
    this.busy.save = true;
    this.update();
    try {
      const sent = toProfile(this.form, this.hasSecret);
      const stored = await api.saveProfile(this.id, sent);
      const secret = secretToStore(this.secretInput.value, this.keychain.available);
      if (secret !== null) {
        await api.setSecret(this.id, secret);
        this.secretInput.value = "";
        stored.auth.hasSecret = true;
        this.secretVersion++;
      }
      for (const p of this.form.proxies) {
        if (p.httpPassword === "" || !typeFields(p.type).basicAuth || !this.keychain.available) continue;
        const name = p.name.trim();
        await api.setProxyPassword(this.id, name, p.httpPassword);
        p.httpPassword = "";
        p.hasHttpPassword = true;
        const row = stored.proxies.find((x) => x.name === name);
        if (row) row.hasHttpPassword = true;
        const el = this.proxyList.querySelector<HTMLInputElement>(`[data-key="${p.key}"] [data-testid="proxy-http-password"]`);
        if (el) {
          el.value = "";
          el.placeholder = storedPlaceholder();
        }
      }
      const typedKeys = await storeTypedSecretKeys(this.id, this.form, stored, this.keychain.available);
      this.saved = stored;
      this.hasSecret = stored.auth.hasSecret;
      // Keep the form as typed (focus, rows) unless the backend normalised something or a typed key was stored.
      if (typedKeys || !sameProfile(stored, sent)) this.loadProfile(stored, true);
      this.renderSecretField();
      toast(t("app.saved"));
      return true;
    } catch (e) {
      this.fail(e);
      return false;
    } finally {
      this.busy.save = false;
      this.update();
    }
  }

  // ---------------------------------------------------------------- test sign-in

  /** What a sign-in result depends on: a change to any of these makes a shown result stale. */
  private currentSigninInputs(): string {
    const f = this.form;
    return JSON.stringify([f.addr.trim(), f.port.trim(), f.tokenEndpointUrl.trim(), f.clientId.trim(), f.audience.trim(), f.scope.trim(), this.secretInput.value, this.secretVersion]);
  }

  /** What "Check" runs with: the form's server and auth (the stored rest when the form is half-typed). */
  private diagInput(): DiagInput | null {
    if (this.errors.addr || this.errors.port) return null;
    let profile = toProfile(this.form, this.hasSecret);
    if (!isValid(this.errors)) profile = { ...this.saved, server: profile.server, auth: profile.auth };
    return { id: this.id, profile, secret: secretForTest(this.secretInput.value) };
  }

  private async onTestSignIn(): Promise<void> {
    const typed = this.secretInput.value;
    this.signinInputs = this.currentSigninInputs();
    let profile = toProfile(this.form, this.hasSecret);
    // Only the auth part matters here; if the rest of the form is half-typed, send the stored rest.
    if (!isValid(this.errors)) profile = { ...this.saved, auth: profile.auth };
    this.busy.signin = true;
    this.update();
    this.signinResult.hidden = false;
    this.signinResult.dataset.state = "pending";
    this.signinResult.textContent = t("app.signingIn");
    try {
      const info = await api.testSignIn(this.id, profile, secretForTest(typed));
      this.showTokenInfo(info);
    } catch (e) {
      const err = toApiError(e);
      this.signinResult.dataset.state = "error";
      this.signinResult.dataset.code = err.code;
      clear(this.signinResult);
      const explained = explainAuthError(err.message);
      const failed = h("strong", {}, t("app.signinFailed"));
      if (explained) append(this.signinResult, failed, ...explanationView(explained, err.message, "signin"));
      else {
        const d = describeError(err);
        append(this.signinResult, failed, h("span", { "data-testid": "signin-error" }, d.text));
        if (d.detail) append(this.signinResult, h("details", { class: "provider-detail" }, h("summary", {}, t("common.details")), h("p", { "data-testid": "signin-detail" }, d.detail)));
      }
    } finally {
      this.busy.signin = false;
      this.update();
    }
  }

  private showTokenInfo(info: TokenInfo): void {
    const now = Date.now();
    const row = (k: string, v: string, testid: string): Child[] => [h("dt", {}, k), h("dd", { "data-testid": testid }, v)];
    this.signinResult.dataset.state = "ok";
    delete this.signinResult.dataset.code;
    clear(this.signinResult);
    append(
      this.signinResult,
      h("strong", {}, t("app.signedIn")),
      h(
        "dl",
        {},
        ...row(t("signin.issuer"), info.issuer, "signin-issuer"),
        ...row(t("signin.clientId"), info.clientId || t("signin.notInToken"), "signin-client-id"),
        ...row(t("signin.subject"), info.subject, "signin-subject"),
        ...row(t("signin.audience"), info.audience.join(", ") || t("signin.none"), "signin-audience"),
        ...row(t("signin.expires"), expiryLabel(info, now), "signin-expiry"),
        ...(info.scope ? row(t("signin.scope"), info.scope, "signin-scope") : []),
      ),
    );
  }

  // ---------------------------------------------------------------- proxies

  private onAddProxy(): void {
    const p = newProxy(this.form.proxies);
    this.form.proxies.push(p);
    this.renderProxies();
    this.update();
    this.proxyList.querySelector<HTMLInputElement>(`[data-key="${p.key}"] [data-testid="proxy-local-port"]`)?.focus();
  }

  private renderProxies(): void {
    for (const k of [...this.fields.keys()]) if (k.startsWith("proxy.")) this.fields.delete(k);
    clear(this.proxyList);
    if (this.form.proxies.length === 0) {
      this.proxyList.appendChild(h("p", { class: "empty" }, t("app.noProxies")));
    }
    for (const p of this.form.proxies) this.proxyList.appendChild(this.proxyRow(p));
    this.renderBadges();
  }

  private proxyRow(p: ProxyForm): HTMLElement {
    const badge = h("span", { class: "badge", "data-role": "badge" });
    const reason = h("small", { class: "badge-detail", "data-role": "reason", hidden: true });
    const traffic = h("span", { class: "traffic", "data-role": "traffic" });
    const addr = h("span", { class: "addr", "data-role": "addr" });
    const legend = h("legend", {}, t("proxy.legend", { name: p.name }));
    const row = h("fieldset", { class: "proxy", "data-key": String(p.key) }, legend);
    const setIds = () => {
      const n = p.name.trim();
      row.dataset.testid = `proxy-row-${n}`;
      row.setAttribute("data-testid", `proxy-row-${n}`);
      badge.setAttribute("data-testid", `proxy-status-${n}`);
      reason.setAttribute("data-testid", `proxy-reason-${n}`);
      traffic.setAttribute("data-testid", `proxy-traffic-${n}`);
      legend.textContent = t("proxy.legend", { name: n });
    };
    setIds();

    const input = (field: Exclude<ProxyFieldName, "httpPassword">, label: string, testid: string, attrs: Record<string, string> = {}) => {
      const id = uid("f");
      const el = h("input", { type: "text", ...attrs, id, value: p[field], "data-testid": testid, autocomplete: "off", spellcheck: "false" });
      const key = proxyField(p.key, field);
      el.addEventListener("input", () => {
        p[field] = el.value;
        this.touched.add(key);
        if (field === "name") {
          setIds();
          this.renderBadges();
        }
        this.update();
      });
      el.addEventListener("blur", () => {
        this.touched.add(key);
        this.update();
      });
      return this.wrapField(key, id, label, el, `pf-${field}`, () => p[field] !== "");
    };

    const enabledId = uid("f");
    const enabled = h("input", { type: "checkbox", id: enabledId, checked: p.enabled, "data-testid": "proxy-enabled" });
    enabled.addEventListener("change", () => {
      p.enabled = enabled.checked;
      this.renderBadges();
      this.update();
    });
    const typeId = uid("f");
    const type = h(
      "select",
      { id: typeId, "data-testid": "proxy-type" },
      ...PROXY_TYPES.map((x) => h("option", { value: x, selected: p.type === x }, typeLabel(x))),
    );
    // Type-specific fields: all built once, shown for the types that use them.
    // Typed secrets (never read back from the keychain): kept in the row until Save sends them there.
    const password = (field: "httpPassword" | "secretKey", label: string, testid: string, hasValue: () => boolean) => {
      const id = uid("f");
      const el = h("input", { type: "password", id, value: p[field], "data-testid": testid, autocomplete: "off", spellcheck: "false" });
      const key = proxyField(p.key, field);
      el.addEventListener("input", () => {
        p[field] = el.value;
        this.touched.add(key);
        this.update();
      });
      return [el, this.wrapField(key, id, label, el, `pf-${field}`, hasValue)] as const;
    };
    const [pw, pwField] = password("httpPassword", t("proxy.httpPassword"), "proxy-http-password", () => p.httpPassword !== "" || p.httpUser !== "");
    const [sk, skField] = password("secretKey", t("secret.secretKey"), "proxy-secret-key", () => p.secretKey !== "" || p.localPort !== "");
    const byType: [keyof ReturnType<typeof typeFields>, HTMLElement][] = [
      ["remotePort", input("remotePort", t("proxy.remotePort"), "proxy-remote-port", { inputmode: "numeric" })],
      ["domains", input("customDomains", t("proxy.customDomains"), "proxy-custom-domains", { placeholder: "app.example.com, www.example.com" })],
      ["domains", input("subdomain", t("proxy.subdomain"), "proxy-subdomain", { placeholder: t("proxy.subdomainPlaceholder") })],
      ["locations", input("locations", t("proxy.locations"), "proxy-locations", { placeholder: t("proxy.locationsPlaceholder") })],
      ["basicAuth", input("httpUser", t("proxy.httpUser"), "proxy-http-user")],
      ["basicAuth", pwField],
      ["hostHeaderRewrite", input("hostHeaderRewrite", t("proxy.hostHeaderRewrite"), "proxy-host-header-rewrite", { placeholder: "localhost" })],
      ["secret", skField],
      ["secret", input("allowUsers", t("secret.allowUsers"), "proxy-allow-users", { placeholder: t("secret.allowUsersPlaceholder") })],
      [
        "multiplexer",
        h("div", { class: "field pf-multiplexer" }, h("span", { class: "label" }, t("proxy.multiplexer")), h("span", { "data-testid": "proxy-multiplexer" }, "HTTP CONNECT (httpconnect)")),
      ],
    ];
    const showType = () => {
      const tf = typeFields(p.type);
      for (const [k, el] of byType) el.hidden = !tf[k];
      if (p.type === "tcpmux") p.multiplexer = "httpconnect";
      pw.placeholder = p.hasHttpPassword ? storedPlaceholder() : newPasswordPlaceholder();
      sk.placeholder = p.hasSecretKey ? t("secret.secretKeyStored") : t("secret.secretKeyNew");
    };
    showType();
    type.addEventListener("change", () => {
      p.type = type.value as ProxyForm["type"];
      showType();
      this.renderBadges();
      this.update();
    });
    const remove = h("button", {
      type: "button",
      class: "link danger",
      "data-testid": "proxy-remove",
      onclick: () => {
        this.form.proxies = this.form.proxies.filter((x) => x !== p);
        this.renderProxies();
        this.update();
      },
    }, t("proxy.remove"));
    remove.setAttribute("aria-label", t("proxy.removeAria", { name: p.name }));

    append(
      row,
      h(
        "div",
        { class: "proxy-fields" },
        input("name", t("proxy.name"), "proxy-name"),
        h("div", { class: "field pf-type" }, h("label", { for: typeId }, t("proxy.type")), type),
        input("localIp", t("proxy.localIp"), "proxy-local-ip", { placeholder: "127.0.0.1" }),
        input("localPort", t("proxy.localPort"), "proxy-local-port", { inputmode: "numeric" }),
        ...byType.map(([, el]) => el),
      ),
      h(
        "div",
        { class: "proxy-foot" },
        h("span", { class: "field check" }, enabled, h("label", { for: enabledId }, t("proxy.enabled"))),
        badge,
        reason,
        addr,
        traffic,
        h("span", { class: "spacer" }),
        remove,
      ),
    );
    return row;
  }

  private renderBadges(): void {
    if (!this.proxyList) return;
    for (const p of this.form.proxies) {
      const row = this.proxyList.querySelector<HTMLElement>(`[data-key="${p.key}"]`);
      if (!row) continue;
      const st = this.status.proxies[p.name.trim()];
      const runs = engineRuns(this.status.conn);
      const where = st?.state === "running" && runs ? publicAddrs(p.type, st.remoteAddr, this.saved.server.addr) : [];
      const secretRunning = typeFields(p.type).secret && st?.state === "running" && runs && p.enabled;
      const b: ProxyBadge = secretRunning ? { label: t("secret.runningSecret"), tone: "ok" as const, detail: t("secret.runningSecretDetail", { name: p.name.trim() }) } : proxyBadge(st, p.enabled, runs, where);
      const addr = row.querySelector<HTMLElement>('[data-role="addr"]');
      if (addr) this.renderAddr(addr, p.name.trim(), p.enabled ? where : []);
      const badge = row.querySelector<HTMLElement>('[data-role="badge"]');
      const traffic = row.querySelector<HTMLElement>('[data-role="traffic"]');
      if (badge) {
        badge.textContent = b.label;
        badge.title = b.detail;
        badge.dataset.tone = b.tone;
        badge.dataset.state = p.enabled ? (st?.state ?? "none") : "disabled";
      }
      if (traffic) traffic.textContent = p.enabled ? trafficLabel(st) : "";
      const reason = row.querySelector<HTMLElement>('[data-role="reason"]');
      if (reason) {
        reason.textContent = b.original ?? "";
        reason.hidden = !b.original;
      }
      row.querySelector('[data-testid="proxy-remove"]')?.setAttribute("aria-label", t("proxy.removeAria", { name: p.name }));
    }
  }

  /** The row's "where to connect": the address (the public URL for http/https) and a Copy button. */
  private renderAddr(el: HTMLElement, name: string, where: { text: string; url?: string }[]): void {
    const key = JSON.stringify(where);
    if (el.dataset.shown === key) return;
    el.dataset.shown = key;
    clear(el);
    for (const w of where) {
      // A public URL is a link that opens in the OS browser (the opener plugin; the webview itself never navigates).
      const url = w.url;
      const text = url
        ? h(
            "a",
            {
              href: url,
              class: "addr-link",
              "data-testid": `proxy-addr-${name}`,
              "data-url": url,
              title: t("proxy.openUrl", { url }),
              onclick: (ev: Event) => {
                ev.preventDefault();
                api.openUrl(url).catch((e) => this.fail(e));
              },
            },
            h("code", {}, w.text),
          )
        : h("code", { "data-testid": `proxy-addr-${name}`, "data-url": "" }, w.text);
      const copy = h(
        "button",
        {
          type: "button",
          class: "link",
          "data-testid": `proxy-copy-${name}`,
          onclick: async () => toast((await copyText(w.text)) ? t("app.copiedText", { text: w.text }) : t("app.copyFailed"), "info"),
        },
        t("app.copy"),
      );
      copy.setAttribute("aria-label", t("app.copyAria", { text: w.text }));
      append(el, text, copy);
    }
  }

  // ---------------------------------------------------------------- logs

  private async onCopyLogs(): Promise<void> {
    const text = this.logs.visibleText();
    if (await copyText(text)) toast(text ? t("app.logsCopied") : t("app.noLogs"));
    else toast(t("app.copyFailed"), "error");
  }

  // ---------------------------------------------------------------- import / export

  private async onImport(input: HTMLInputElement): Promise<void> {
    const file = input.files?.[0];
    input.value = ""; // the same file can be picked again
    if (!file) return;
    try {
      const text = await file.text();
      // import_frpc stores the imported profile (and moves the file's secret into the keychain).
      const r = await api.importFrpc(this.id, text);
      this.loadProfile(r.profile, true);
      if (r.skipped.length === 0) toast(t("app.imported", { file: file.name }));
      else {
        const s = skippedList(r.skipped);
        toast(t("app.importedWithout", { file: file.name, skipped: s.text }), "error", s.detail);
      }
    } catch (e) {
      this.fail(e);
    }
  }

  private async onExport(): Promise<void> {
    let text: string;
    try {
      text = await api.exportFrpc(this.id);
    } catch (e) {
      this.fail(e);
      return;
    }
    const url = URL.createObjectURL(new Blob([text], { type: "application/toml" }));
    const d = this.exportDialog;
    clear(d);
    const close = () => {
      d.close();
      URL.revokeObjectURL(url);
    };
    append(
      d,
      h("h2", {}, "frpc.toml"),
      h("p", { class: "hint" }, this.isDirty() ? t("export.unsavedHint") : t("export.secretHint")),
      h("textarea", { readonly: true, rows: 14, "aria-label": t("app.exportedAria"), "data-testid": "export-text", spellcheck: "false" }, text),
      h(
        "div",
        { class: "dialog-actions" },
        h("a", { class: "button primary", href: url, download: "frpc.toml", "data-testid": "export-download" }, t("export.saveFile")),
        h("button", {
          type: "button",
          "data-testid": "export-copy",
          onclick: async () => toast((await copyText(text)) ? t("app.copied") : t("app.copyFailed"), "info"),
        }, t("app.copy")),
        h("button", { type: "button", onclick: close }, t("export.close")),
      ),
    );
    d.addEventListener("close", () => URL.revokeObjectURL(url), { once: true });
    if (typeof d.showModal === "function") d.showModal();
    else d.setAttribute("open", "");
  }
}

/** An OAuth error in plain words, with the provider's own text kept as a detail. */
function explanationView(e: AuthExplanation, original: string, prefix: string): Child[] {
  return [
    h("span", { "data-testid": `${prefix}-error`, "data-oauth-error": e.code }, e.explanation),
    h(
      "details",
      { class: "provider-detail" },
      h("summary", {}, isProviderCode(e.code) ? t("app.providerAnswer", { code: e.code }) : t("common.details")),
      h("p", { "data-testid": `${prefix}-detail` }, original),
    ),
  ];
}

/** A proxy password field's placeholder when none is stored. */
const newPasswordPlaceholder = (): string => t("proxy.passwordPlaceholder");

/** A form field's name for the "fix these fields" summary (the key itself when it has no name). */
function fieldName(k: string): string {
  const key = FIELD_NAMES[k];
  return key ? t(key) : k;
}

function section(title: string, id: string, ...children: Child[]): HTMLElement {
  const hid = `sec-${id}`;
  return h("section", { class: "card", "aria-labelledby": hid, "data-testid": `section-${id}` }, h("h2", { id: hid }, title), ...children);
}

/** Clipboard write with the old execCommand path for webviews without the async clipboard API. */
export async function copyText(text: string): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* fall through */
  }
  const ta = h("textarea", { class: "visually-hidden", readonly: true }, text);
  document.body.appendChild(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand("copy");
  } catch {
    ok = false;
  }
  ta.remove();
  return ok;
}
