// The secret field's rules. Invariant: the field's value only ever holds what the user typed in this session;
// a stored secret is never read back (the backend cannot return it) and is only hinted at by the placeholder.
import { t } from "./i18n";
import type { AuthMethod } from "./types";

export interface SecretFieldView {
  label: string;
  placeholder: string;
  disabled: boolean;
  /** Shown under the field. */
  hint: string;
  /** Offer "Forget stored secret". */
  canClear: boolean;
}

/** The placeholder of a secret field whose secret is in the keychain. */
export const storedPlaceholder = (): string => t("secret.storedPlaceholder");

export function secretFieldView(s: { method: AuthMethod; hasSecret: boolean; keychainAvailable: boolean }): SecretFieldView {
  const what = s.method === "oidc" ? t("secret.whatClientSecret") : t("secret.whatToken");
  const label = s.method === "oidc" ? t("secret.labelClientSecret") : t("secret.labelToken");
  if (!s.keychainAvailable) {
    return {
      label,
      placeholder: t("secret.unavailablePlaceholder"),
      disabled: true,
      hint: t("secret.unavailableHint", { what }),
      canClear: false,
    };
  }
  if (s.hasSecret) {
    return {
      label,
      placeholder: storedPlaceholder(),
      disabled: false,
      hint: t("secret.keepHint", { what }),
      canClear: true,
    };
  }
  return {
    label,
    placeholder: s.method === "oidc" ? t("secret.newPlaceholderOidc") : t("secret.newPlaceholderToken"),
    disabled: false,
    hint: t("secret.newHint"),
    canClear: false,
  };
}

/** What Save sends: the typed secret, or null to keep the stored one (empty field). */
export function secretToStore(typed: string, keychainAvailable: boolean): string | null {
  if (!keychainAvailable) return null;
  return typed === "" ? null : typed;
}

/** `test_sign_in`'s `secret` argument: the typed secret, or null for "use the stored secret". */
export function secretForTest(typed: string): string | null {
  return typed === "" ? null : typed;
}
