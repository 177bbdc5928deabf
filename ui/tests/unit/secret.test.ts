import { describe, expect, it } from "vitest";
import { storedPlaceholder, secretFieldView, secretForTest, secretToStore } from "../../src/secret";

describe("secret field", () => {
  it("with a stored secret: placeholder says so, the field stays empty-able and can be cleared", () => {
    const v = secretFieldView({ method: "oidc", hasSecret: true, keychainAvailable: true });
    expect(v).toMatchObject({ label: "Client secret", placeholder: storedPlaceholder(), disabled: false, canClear: true });
    expect(v.placeholder).toContain("stored in the system keychain");
    expect(v.hint).toMatch(/Leave empty to keep/);
  });
  it("without a stored secret", () => {
    const v = secretFieldView({ method: "oidc", hasSecret: false, keychainAvailable: true });
    expect(v.placeholder).not.toContain("stored");
    expect(v).toMatchObject({ disabled: false, canClear: false });
  });
  it("token method relabels the field", () =>
    expect(secretFieldView({ method: "token", hasSecret: true, keychainAvailable: true })).toMatchObject({ label: "Token", placeholder: storedPlaceholder() }));
  it("keychain unavailable disables it", () =>
    expect(secretFieldView({ method: "oidc", hasSecret: true, keychainAvailable: false })).toMatchObject({ disabled: true, canClear: false }));
  it("an empty field keeps the stored secret", () => {
    expect(secretToStore("", true)).toBeNull();
    expect(secretToStore("s3cr3t", true)).toBe("s3cr3t");
    expect(secretToStore(" padded ", true)).toBe(" padded ");
  });
  it("nothing is stored when the keychain is unavailable", () => expect(secretToStore("s3cr3t", false)).toBeNull());
  it("test sign-in sends the typed secret or null for the stored one", () => {
    expect(secretForTest("")).toBeNull();
    expect(secretForTest("typed")).toBe("typed");
  });
});
