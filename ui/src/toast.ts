// Transient messages in a corner: errors from commands (see errors.ts: the message, or its translation with the
// message as a detail) and confirmations.
import { h } from "./dom";
import { t } from "./i18n";

let host: HTMLElement | null = null;

export function mountToasts(parent: HTMLElement): void {
  host = h("div", { class: "toasts", "aria-live": "polite", "data-testid": "toasts" });
  parent.appendChild(host);
}

export function toast(message: string, kind: "info" | "error" = "info", detail: string | null = null): void {
  if (!host) return;
  const close = h("button", { class: "toast-close", type: "button", "aria-label": t("toast.dismiss") }, "×");
  const el = h(
    "div",
    { class: `toast toast-${kind}`, role: kind === "error" ? "alert" : "status", "data-testid": "toast", "data-kind": kind },
    h("span", { class: "toast-text" }, message, detail ? h("small", { class: "toast-detail", "data-testid": "toast-detail" }, detail) : null),
    close,
  );
  const remove = () => el.remove();
  close.addEventListener("click", remove);
  host.appendChild(el);
  // Errors stay long enough to read a provider's message; confirmations go quickly.
  setTimeout(remove, kind === "error" ? 12_000 : 4_000);
  while (host.childElementCount > 4) host.firstElementChild?.remove();
}
