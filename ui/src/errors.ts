// Command errors in the chosen language. The backend's messages are English and specific ("Home: no secret is
// stored: …"); in English they are shown as they are. In another language the error's stable code (or an error
// the app recognises, see explainAuthError) gives a translated sentence, and the backend's text is kept as a detail.
import { toApiError, type ApiError } from "./api";
import { explainAuthError } from "./format";
import { language, lookup, t } from "./i18n";
import { toast } from "./toast";

export interface ErrorText {
  /** What to show first. */
  text: string;
  /** The backend's own words, when `text` is a translation of them. */
  detail: string | null;
}

export function describeError(e: Pick<ApiError, "code" | "message">): ErrorText {
  if (language() === "en") return { text: e.message, detail: null };
  const explained = explainAuthError(e.message);
  const text = explained?.explanation ?? lookup(`error.${e.code}`) ?? t("error.unknown");
  return { text, detail: e.message };
}

/** A failed command as an error toast: the message (translated, with the original as a detail). */
export function toastError(e: unknown): void {
  const d = describeError(toApiError(e));
  toast(d.text, "error", d.detail);
}
