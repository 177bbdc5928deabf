// The server profiles: a bar above the form listing every profile with its connection state, to pick the one
// the form edits, add one (empty or from an frpc file), rename or delete the one shown, and connect or disconnect
// them all. The form (app.ts) edits one profile at a time; this module only talks to the list commands.
import "./profiles.css";
import { api } from "./api";
import { clear, h } from "./dom";
import { connView } from "./format";
import { relabelTree, t } from "./i18n";
import { skippedList, toastError } from "./errors";
import { toast } from "./toast";
import type { ProfileSummary, Status } from "./types";

export interface ProfileBarHooks {
  /** Show profile `id` in the form (the bar marks it current only once this resolves true). */
  select(id: string): Promise<boolean>;
}

/** The short state word a profile's tab shows. */
export function stateWord(s: Status): string {
  switch (s.conn.state) {
    case "disconnected":
      return t("profiles.state.disconnected");
    case "connecting":
      return t("profiles.state.connecting");
    case "connected":
      return t("profiles.state.connected");
    case "error":
      return s.conn.retryInMs === null ? t("profiles.state.error") : t("profiles.state.retrying");
  }
}

/** A test id part for a profile name: letters, digits and '-' only. */
export function nameKey(name: string): string {
  return name.trim().replace(/[^A-Za-z0-9]+/g, "-");
}

export class ProfileBar {
  readonly el: HTMLElement;
  private list: ProfileSummary[] = [];
  private current = "";
  private readonly tabs: HTMLElement;
  private readonly nameInput: HTMLInputElement;
  private readonly deleteBtn: HTMLButtonElement;
  private deleteArmed = false;

  constructor(private readonly hooks: ProfileBarHooks) {
    this.tabs = h("div", { class: "profile-tabs", role: "tablist", "aria-label": t("profiles.tabs"), "data-i18n-aria-label": "profiles.tabs", "data-testid": "profile-tabs" });
    this.nameInput = h("input", {
      type: "text",
      class: "profile-name",
      "data-testid": "profile-name",
      "aria-label": t("profiles.nameAria"),
      "data-i18n-aria-label": "profiles.nameAria",
      autocomplete: "off",
      spellcheck: "false",
    });
    this.nameInput.addEventListener("change", () => void this.onRename());
    this.nameInput.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") this.nameInput.blur();
    });
    this.deleteBtn = h("button", { type: "button", class: "link danger", "data-testid": "profile-delete", onclick: () => void this.onDelete() }, t("profiles.delete"));
    const importNew = h("input", {
      type: "file",
      accept: ".toml,.ini,.yaml,.yml,.json,text/plain",
      class: "visually-hidden",
      id: "import-new-file",
      "data-testid": "import-new-file",
      "aria-label": t("profiles.importAria"),
      "data-i18n-aria-label": "profiles.importAria",
      onchange: (ev: Event) => void this.onImportNew(ev.target as HTMLInputElement),
    });
    this.el = h(
      "nav",
      { class: "profiles", "aria-label": t("profiles.aria"), "data-i18n-aria-label": "profiles.aria", "data-testid": "profile-bar" },
      this.tabs,
      h(
        "div",
        { class: "profile-tools" },
        h("button", { type: "button", "data-testid": "add-profile", onclick: () => void this.onAdd(), "data-i18n": "profiles.add" }, t("profiles.add")),
        h("label", { class: "button", for: "import-new-file", title: t("profiles.importTitle"), "data-i18n-title": "profiles.importTitle" }, h("span", { "data-i18n": "profiles.import" }, t("profiles.import")), importNew),
        h("span", { class: "profile-edit" }, h("span", { class: "label", "data-i18n": "profiles.name" }, t("profiles.name")), this.nameInput, this.deleteBtn),
        h("span", { class: "spacer" }),
        h("button", { type: "button", "data-testid": "connect-all", onclick: () => void this.run(api.connectAll()), "data-i18n": "profiles.connectAll" }, t("profiles.connectAll")),
        h("button", { type: "button", "data-testid": "disconnect-all", onclick: () => void this.run(api.disconnectAll()), "data-i18n": "profiles.disconnectAll" }, t("profiles.disconnectAll")),
      ),
    );
  }

  /** Every text again, in the current language. */
  relabel(): void {
    relabelTree(this.el);
    this.render();
  }

  /** The profile the form shows. */
  get currentId(): string {
    return this.current;
  }

  /** Replaces the list (from list_profiles) and marks `current`. */
  set(list: ProfileSummary[], current: string): void {
    this.list = list;
    this.current = list.some((p) => p.id === current) ? current : (list[0]?.id ?? "");
    this.render();
  }

  /** A status-changed event: the tab of its profile follows. */
  updateStatus(s: Status): void {
    const id = s.profileId ?? this.current;
    const p = this.list.find((x) => x.id === id);
    if (!p) return;
    p.status = s;
    this.render();
  }

  async reload(current = this.current): Promise<void> {
    this.set(await api.listProfiles(), current);
  }

  private render(): void {
    clear(this.tabs);
    for (const p of this.list) {
      const v = connView(p.status.conn, Date.now(), null);
      const key = nameKey(p.name);
      const tab = h(
        "button",
        {
          type: "button",
          role: "tab",
          class: "profile-tab",
          "aria-selected": String(p.id === this.current),
          "data-testid": `profile-tab-${key}`,
          "data-id": p.id,
          "data-tone": v.tone,
          title: `${p.name}: ${v.label}`,
          onclick: () => void this.choose(p.id),
        },
        h("span", { class: "dot", "aria-hidden": "true" }),
        h("span", { class: "profile-tab-name" }, p.name),
        h("span", { class: "profile-tab-state", "data-testid": `profile-state-${key}` }, stateWord(p.status)),
      );
      this.tabs.appendChild(tab);
    }
    const cur = this.list.find((p) => p.id === this.current);
    if (document.activeElement !== this.nameInput) this.nameInput.value = cur?.name ?? "";
    this.disarmDelete();
  }

  private async choose(id: string): Promise<void> {
    if (id === this.current) return;
    if (await this.hooks.select(id)) {
      this.current = id;
      this.render();
    }
  }

  private fail(e: unknown): void {
    toastError(e);
  }

  private async run(p: Promise<unknown>): Promise<void> {
    try {
      await p;
    } catch (e) {
      this.fail(e);
    }
  }

  private async onAdd(): Promise<void> {
    try {
      const added = await api.addProfile(t("profiles.newName"));
      this.list.push(added);
      this.render();
      await this.choose(added.id);
      this.nameInput.focus();
      this.nameInput.select();
    } catch (e) {
      this.fail(e);
    }
  }

  private async onRename(): Promise<void> {
    const cur = this.list.find((p) => p.id === this.current);
    const name = this.nameInput.value.trim();
    // Empty (e.g. the field was just cleared to type a new name): nothing to rename yet.
    if (!cur || name === "" || name === cur.name) return;
    try {
      await api.renameProfile(cur.id, name);
      cur.name = name;
      this.render();
      toast(t("profiles.renamed", { name }));
    } catch (e) {
      this.nameInput.value = cur.name;
      this.fail(e);
    }
  }

  private disarmDelete(): void {
    this.deleteArmed = false;
    this.deleteBtn.textContent = t("profiles.delete");
    this.deleteBtn.dataset.armed = "false";
  }

  /** Two clicks: the first asks, the second deletes (the profile, its connection and its keychain entries). */
  private async onDelete(): Promise<void> {
    const cur = this.list.find((p) => p.id === this.current);
    if (!cur) return;
    if (!this.deleteArmed) {
      this.deleteArmed = true;
      this.deleteBtn.textContent = t("profiles.deleteConfirm", { name: cur.name });
      this.deleteBtn.dataset.armed = "true";
      return;
    }
    try {
      await api.deleteProfile(cur.id);
      const list = await api.listProfiles();
      this.list = list;
      const next = list[0]?.id ?? "";
      this.current = "";
      await this.choose(next);
      this.render();
      toast(t("profiles.deleted", { name: cur.name }));
    } catch (e) {
      this.disarmDelete();
      this.fail(e);
    }
  }

  private async onImportNew(input: HTMLInputElement): Promise<void> {
    const file = input.files?.[0];
    input.value = "";
    if (!file) return;
    try {
      const r = await api.importFrpc(null, await file.text());
      await this.reload(this.current);
      await this.choose(r.id);
      if (r.skipped.length === 0) toast(t("profiles.added", { file: file.name }));
      else {
        const s = skippedList(r.skipped);
        toast(t("profiles.addedWithout", { file: file.name, skipped: s.text }), "error", s.detail);
      }
    } catch (e) {
      this.fail(e);
    }
  }
}
