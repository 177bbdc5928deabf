// The secret field's rules. Invariant: the field's value only ever holds what the user typed in this session;
// a stored secret is never read back (the backend cannot return it) and is only hinted at by the placeholder.
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

export const STORED_PLACEHOLDER = "stored in the system keychain — type to replace";

export function secretFieldView(s: { method: AuthMethod; hasSecret: boolean; keychainAvailable: boolean }): SecretFieldView {
  const what = s.method === "oidc" ? "client secret" : "token";
  const label = s.method === "oidc" ? "Client secret" : "Token";
  if (!s.keychainAvailable) {
    return {
      label,
      placeholder: "system keychain unavailable — cannot store a secret",
      disabled: true,
      hint: `The ${what} can only be kept in the system keychain; see the message at the top.`,
      canClear: false,
    };
  }
  if (s.hasSecret) {
    return {
      label,
      placeholder: STORED_PLACEHOLDER,
      disabled: false,
      hint: `Leave empty to keep the stored ${what}.`,
      canClear: true,
    };
  }
  return {
    label,
    placeholder: s.method === "oidc" ? "the client secret from your identity provider" : "the token from the server's configuration",
    disabled: false,
    hint: `Saved to the system keychain, never to a file.`,
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
