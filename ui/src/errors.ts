// What the backend reports, in the chosen language. The backend sends codes with parameters (a command error's
// `reason`, an import's skip reasons, the keychain's problem); each is worded here from the catalogues, and the
// backend's or the provider's own words are kept as a detail under the sentence. A command error's English
// `message` is shown as is in English; in another language its reason (or its stable code, or an error the app
// recognises, see explainAuthError) gives the sentence and the message is the detail.
import { toApiError, type ApiError } from "./api";
import { explainAuthError } from "./format";
import { language, lookup, t } from "./i18n";
import { toast } from "./toast";
import type { ErrorReason, KeychainStatus, Skipped } from "./types";

export interface ErrorText {
  /** What to show first. */
  text: string;
  /** The backend's own words, when `text` is a translation of them. */
  detail: string | null;
}

/** A command error's specifics as a sentence. */
export function reasonText(r: ErrorReason): string {
  switch (r.code) {
    case "noSecret":
      return t("reason.noSecret", { profile: r.profile });
    case "noHttpPassword":
      return t("reason.noHttpPassword", { proxy: r.proxy });
    case "noProxySecretKey":
      return t("reason.noProxySecretKey", { proxy: r.proxy });
    case "noVisitorSecretKey":
      return t("reason.noVisitorSecretKey", { visitor: r.visitor });
    case "invalidField":
      return t("reason.invalidField", { field: r.field });
    case "nameTaken":
      return t("reason.nameTaken", { name: r.name });
    case "notAllConnected":
      return t("reason.notAllConnected", { profiles: r.profiles });
  }
}

/** One proxy or visitor an import left out (or brought without some settings), as a sentence. */
export function skippedText(s: Skipped): string {
  switch (s.code) {
    case "proxyInvalid":
      return t("import.skipped.proxyInvalid", { name: s.name });
    case "visitorInvalid":
      return t("import.skipped.visitorInvalid", { name: s.name });
    case "typeNotOffered":
      return t("import.skipped.typeNotOffered", { name: s.name, type: s.type });
    case "pluginNotSupported":
      return t("import.skipped.pluginNotSupported", { name: s.name, plugin: s.plugin });
    case "proxySettingsDropped":
      return t("import.skipped.proxySettingsDropped", { name: s.name, settings: s.settings });
    case "visitorSettingsDropped":
      return t("import.skipped.visitorSettingsDropped", { name: s.name, settings: s.settings });
    case "fallbackNotImported":
      return t("import.skipped.fallbackNotImported", { name: s.name, fallbackTo: s.fallbackTo });
    case "globalSettingsDropped":
      return t("import.skipped.globalSettingsDropped", { settings: s.settings });
  }
}

/** An import's skip list: one line of sentences, and frp's own words (one line per entry that has some). */
export function skippedList(list: readonly Skipped[]): ErrorText {
  const detail = list.flatMap((s) => ("detail" in s && s.detail ? [`${s.name}: ${s.detail}`] : [])).join("\n");
  return { text: list.map(skippedText).join(t("list.semi")), detail: detail || null };
}

/** The keychain banner: what is wrong and how to fix it, and the keychain's own words. */
export function keychainText(k: KeychainStatus): ErrorText {
  const text = k.code === "refused" ? t("keychain.refused") : t("keychain.unavailable");
  return { text, detail: k.detail || null };
}

export function describeError(e: Pick<ApiError, "code" | "message"> & { reason?: ErrorReason | undefined }): ErrorText {
  if (language() === "en") return { text: e.message, detail: null };
  const explained = explainAuthError(e.message);
  const text = (e.reason ? reasonText(e.reason) : null) ?? explained?.explanation ?? lookup(`error.${e.code}`) ?? t("error.unknown");
  return { text, detail: e.message };
}

/** A failed command as an error toast: the message (translated, with the original as a detail). */
export function toastError(e: unknown): void {
  const d = describeError(toApiError(e));
  toast(d.text, "error", d.detail);
}
