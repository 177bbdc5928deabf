// "Connect to a private service": the visitor rows in the window. Each row edits a `VisitorForm` of the profile
// form in place (saved with the form's Save); its switch turns a stored visitor on or off at once (one click:
// `set_visitor_enabled`, which also connects a disconnected server), and its head shows the local address to
// open, with Copy, and the state the engine reports (via server, peer to peer, failed with why).
import "./visitors.css";
import { api } from "./api";
import { append, clear, h, uid } from "./dom";
import { typeFields, type ProfileForm } from "./form";
import { t, type PlainKey } from "./i18n";
import { toast } from "./toast";
import { VISITOR_TYPES, type Profile, type Status, type VisitorDef, type VisitorType } from "./types";
import { newVisitor, toVisitors, visitorField, visitorView, type VisitorFieldName, type VisitorForm } from "./visitors";

/** What the list needs from the window. */
export interface VisitorHost {
  /** Wraps an input with its label and error line, registered under `key` for validation messages. */
  field(key: string, id: string, label: string, input: HTMLElement, cls: string, hasValue: () => boolean): HTMLElement;
  /** A field was edited or left. */
  touch(key: string): void;
  /** Re-validate and refresh the summary and buttons. */
  changed(): void;
  /** The profile shown (its id). */
  profileId(): string;
  /** The stored visitors (to tell a stored, unchanged row from an edited one). */
  savedVisitors(): readonly VisitorDef[];
  /** The backend stored `p` (after a toggle). */
  stored(p: Profile): void;
  fail(e: unknown): void;
  /** Clipboard write. */
  copy(text: string): Promise<boolean>;
}

/** A visitor type's label in the chosen language. */
const TYPE_KEYS: Record<VisitorType, PlainKey> = { stcp: "secret.typeStcp", sudp: "secret.typeSudp", xtcp: "secret.typeXtcp" };

export class VisitorList {
  readonly el: HTMLElement;
  private readonly list: HTMLElement;
  /** Texts set again at every render (a language change re-renders the form). */
  private readonly texts: [HTMLElement, () => string][];
  private rows: VisitorForm[] = [];
  private status: Status = { conn: { state: "disconnected" }, proxies: {} };

  constructor(private readonly host: VisitorHost) {
    this.list = h("div", { class: "visitor-list", "data-testid": "visitor-list" });
    const hid = uid("sec");
    const title = h("h2", { id: hid });
    const intro = h("p", { class: "hint" });
    const add = h("button", { type: "button", "data-testid": "add-visitor", onclick: () => this.onAdd() });
    this.texts = [
      [title, () => t("visitor.section")],
      [intro, () => t("visitor.intro")],
      [add, () => t("visitor.add")],
    ];
    this.el = h("section", { class: "card", "aria-labelledby": hid, "data-testid": "section-visitors" }, title, intro, this.list, add);
  }

  /** Shows `rows` (the form's own array: edits, adds and removals happen in it). */
  render(rows: VisitorForm[]): void {
    this.rows = rows;
    for (const [el, text] of this.texts) el.textContent = text();
    clear(this.list);
    if (rows.length === 0) this.list.appendChild(h("p", { class: "empty", "data-testid": "visitors-empty" }, t("visitor.empty")));
    for (const r of rows) this.list.appendChild(this.row(r));
    this.renderStates();
  }

  setStatus(s: Status): void {
    this.status = s;
    this.renderStates();
  }

  private onAdd(): void {
    const r = newVisitor(this.rows);
    // Off until saved and switched on: one click then starts it.
    r.enabled = false;
    this.rows.push(r);
    this.render(this.rows);
    this.host.changed();
    this.list.querySelector<HTMLInputElement>(`[data-key="${r.key}"] [data-testid="visitor-server-name"]`)?.focus();
  }

  /** Whether the row is stored as shown (so its switch can apply at once). */
  private isStored(r: VisitorForm): boolean {
    const saved = this.host.savedVisitors().find((v) => v.name === r.storedName);
    if (!saved || r.secretKey !== "") return false;
    const shown = toVisitors([r])[0]!;
    const norm = (v: VisitorDef) =>
      JSON.stringify([v.name, v.type, v.serverName, v.serverUser ?? "", v.bindAddr, v.bindPort, v.type === "xtcp" ? (v.fallbackTo ?? "") : ""]);
    return norm(shown) === norm(saved);
  }

  private async onToggle(r: VisitorForm, box: HTMLInputElement): Promise<void> {
    const on = box.checked;
    if (!this.isStored(r)) {
      // Not stored yet (new or edited): the switch is part of the form and applies with Save.
      r.enabled = on;
      toast(t("visitor.toggleNeedsSave"), "info");
      this.host.changed();
      this.renderStates();
      return;
    }
    box.disabled = true;
    try {
      const p = await api.setVisitorEnabled(this.host.profileId(), r.storedName, on);
      r.enabled = on;
      this.host.stored(p);
    } catch (e) {
      box.checked = !on;
      this.host.fail(e);
    } finally {
      box.disabled = false;
      this.host.changed();
      this.renderStates();
    }
  }

  private row(r: VisitorForm): HTMLElement {
    const legend = h("legend", {}, t("visitor.legend", { name: r.name }));
    const row = h("fieldset", { class: "proxy visitor", "data-key": String(r.key) }, legend);
    const toggleId = uid("f");
    const toggle = h("input", { type: "checkbox", role: "switch", id: toggleId, checked: r.enabled, "data-testid": "visitor-toggle" });
    toggle.addEventListener("change", () => void this.onToggle(r, toggle));
    const toggleLabel = h("label", { for: toggleId, class: "visually-hidden" }, t("visitor.toggleLabel", { name: r.name }));
    const title = h("strong", { class: "visitor-name", "data-role": "title" }, r.name);
    const badge = h("span", { class: "badge", "data-role": "badge" });
    const reason = h("small", { class: "badge-detail", "data-role": "reason", hidden: true });
    const addr = h("span", { class: "addr", "data-role": "addr" });
    const setIds = () => {
      const n = r.name.trim();
      row.setAttribute("data-testid", `visitor-row-${n}`);
      badge.setAttribute("data-testid", `visitor-status-${n}`);
      reason.setAttribute("data-testid", `visitor-reason-${n}`);
      legend.textContent = t("visitor.legend", { name: n });
      title.textContent = n;
      toggleLabel.textContent = t("visitor.toggleLabel", { name: n });
    };
    setIds();

    const text = (field: Exclude<VisitorFieldName, "secretKey" | "fallbackTo">, label: string, testid: string, attrs: Record<string, string> = {}) => {
      const id = uid("f");
      const el = h("input", { type: "text", ...attrs, id, value: r[field], "data-testid": testid, autocomplete: "off", spellcheck: "false" });
      const key = visitorField(r.key, field);
      el.addEventListener("input", () => {
        r[field] = el.value;
        this.host.touch(key);
        if (field === "name") setIds();
        this.host.changed();
        this.renderStates();
      });
      el.addEventListener("blur", () => {
        this.host.touch(key);
        this.host.changed();
      });
      return this.host.field(key, id, label, el, `vf-${field}`, () => r[field] !== "");
    };

    const secretId = uid("f");
    const secret = h("input", { type: "password", id: secretId, value: r.secretKey, "data-testid": "visitor-secret-key", autocomplete: "off", spellcheck: "false" });
    const secretKey = visitorField(r.key, "secretKey");
    secret.placeholder = r.hasSecretKey ? t("secret.secretKeyStored") : t("secret.secretKeyNew");
    secret.addEventListener("input", () => {
      r.secretKey = secret.value;
      this.host.touch(secretKey);
      this.host.changed();
    });

    const typeId = uid("f");
    const type = h("select", { id: typeId, "data-testid": "visitor-type" }, ...VISITOR_TYPES.map((x) => h("option", { value: x, selected: r.type === x }, t(TYPE_KEYS[x]))));
    const fbId = uid("f");
    const fallback = h("select", { id: fbId, "data-testid": "visitor-fallback" });
    const fbKey = visitorField(r.key, "fallbackTo");
    const fillFallback = () => {
      clear(fallback);
      fallback.appendChild(h("option", { value: "", selected: r.fallbackTo === "" }, t("visitor.fallbackNone")));
      for (const o of this.rows) {
        const n = o.name.trim();
        if (o === r || o.type !== "stcp" || n === "") continue;
        fallback.appendChild(h("option", { value: n, selected: r.fallbackTo === n }, n));
      }
    };
    fillFallback();
    fallback.addEventListener("focus", fillFallback);
    fallback.addEventListener("change", () => {
      r.fallbackTo = fallback.value;
      this.host.touch(fbKey);
      this.host.changed();
    });
    const fallbackField = this.host.field(fbKey, fbId, t("visitor.fallbackTo"), fallback, "vf-fallbackTo", () => r.fallbackTo !== "");
    const showType = () => {
      fallbackField.hidden = r.type !== "xtcp";
    };
    showType();
    type.addEventListener("change", () => {
      r.type = type.value as VisitorForm["type"];
      showType();
      this.host.changed();
      this.renderStates();
    });

    const remove = h(
      "button",
      {
        type: "button",
        class: "link danger",
        "data-testid": "visitor-remove",
        onclick: () => {
          const i = this.rows.indexOf(r);
          if (i >= 0) this.rows.splice(i, 1);
          this.render(this.rows);
          this.host.changed();
        },
      },
      t("visitor.remove"),
    );
    remove.setAttribute("aria-label", t("visitor.removeLabel", { name: r.name }));

    append(
      row,
      h("div", { class: "visitor-head" }, h("span", { class: "switch" }, toggle, toggleLabel), title, badge, reason, addr),
      h(
        "div",
        { class: "proxy-fields visitor-fields" },
        text("name", t("visitor.name"), "visitor-name"),
        h("div", { class: "field vf-type" }, h("label", { for: typeId }, t("visitor.type")), type),
        text("serverName", t("visitor.serverName"), "visitor-server-name", { placeholder: t("visitor.serverNamePlaceholder") }),
        text("serverUser", t("visitor.serverUser"), "visitor-server-user", { placeholder: t("visitor.serverUserPlaceholder") }),
        this.host.field(secretKey, secretId, t("secret.secretKey"), secret, "vf-secretKey", () => r.secretKey !== "" || r.serverName !== ""),
        text("bindAddr", t("visitor.bindAddr"), "visitor-bind-addr", { placeholder: "127.0.0.1" }),
        text("bindPort", t("visitor.bindPort"), "visitor-bind-port", { inputmode: "numeric", placeholder: "6000" }),
        fallbackField,
      ),
      h("div", { class: "proxy-foot" }, h("span", { class: "spacer" }), remove),
    );
    return row;
  }

  /** Each row's switch, state badge and local address, from the form and the engine's status. */
  private renderStates(): void {
    for (const r of this.rows) {
      const row = this.list.querySelector<HTMLElement>(`[data-key="${r.key}"]`);
      if (!row) continue;
      const name = r.name.trim();
      const view = visitorView(r, this.status.visitors?.[name], this.status.conn);
      const badge = row.querySelector<HTMLElement>('[data-role="badge"]');
      if (badge) {
        badge.textContent = view.label;
        badge.title = view.detail;
        badge.dataset.tone = view.tone;
        badge.dataset.state = view.state;
      }
      row.dataset.state = view.state;
      const reason = row.querySelector<HTMLElement>('[data-role="reason"]');
      if (reason) {
        reason.textContent = view.original ?? "";
        reason.hidden = !view.original;
      }
      const toggle = row.querySelector<HTMLInputElement>('[data-testid="visitor-toggle"]');
      if (toggle && !toggle.disabled) toggle.checked = r.enabled;
      const addr = row.querySelector<HTMLElement>('[data-role="addr"]');
      if (addr) this.renderAddr(addr, name, view.localAddr);
    }
  }

  /** `127.0.0.1:port` to open, with Copy (only while the local port is open). */
  private renderAddr(el: HTMLElement, name: string, at: string | null): void {
    const key = `${name} ${at ?? ""}`;
    if (el.dataset.shown === key) return;
    el.dataset.shown = key;
    clear(el);
    if (at === null) return;
    const copy = h(
      "button",
      {
        type: "button",
        class: "link",
        "data-testid": `visitor-copy-${name}`,
        onclick: async () => {
          const ok = await this.host.copy(at);
          toast(ok ? t("visitor.copied", { addr: at }) : t("visitor.copyFailed"), ok ? "info" : "error");
        },
      },
      t("visitor.copy"),
    );
    copy.setAttribute("aria-label", `${t("visitor.copy")} ${at}`);
    append(el, h("span", { class: "hint" }, `${t("visitor.open")} `), h("code", { "data-testid": `visitor-addr-${name}` }, at), copy);
  }
}

/**
 * After a Save: the secret keys typed in the form go to the keychain (a proxy's or a visitor's, by its saved name),
 * the typed values are forgotten, and each row's stored name becomes its name (a later rename moves from it).
 * `stored` (what the backend returned) gets its `hasSecretKey` flags set to match. True when a key was stored.
 */
export async function storeTypedSecretKeys(id: string, form: ProfileForm, stored: Profile, keychainAvailable: boolean): Promise<boolean> {
  let any = false;
  for (const p of form.proxies) {
    const name = p.name.trim();
    if (p.secretKey !== "" && keychainAvailable && typeFields(p.type).secret) {
      await api.setProxySecretKey(id, name, p.secretKey);
      any = true;
      p.secretKey = "";
      p.hasSecretKey = true;
      const row = stored.proxies.find((x) => x.name === name);
      if (row) row.hasSecretKey = true;
    }
    p.storedName = name;
  }
  for (const v of form.visitors) {
    const name = v.name.trim();
    if (v.secretKey !== "" && keychainAvailable) {
      await api.setVisitorSecretKey(id, name, v.secretKey);
      any = true;
      v.secretKey = "";
      v.hasSecretKey = true;
      const row = stored.visitors?.find((x) => x.name === name);
      if (row) row.hasSecretKey = true;
    }
    v.storedName = name;
  }
  return any;
}

/** Whether the form holds a typed secret key not stored yet. */
export const hasTypedSecretKeys = (form: ProfileForm): boolean =>
  form.proxies.some((p) => p.secretKey !== "") || form.visitors.some((v) => v.secretKey !== "");
