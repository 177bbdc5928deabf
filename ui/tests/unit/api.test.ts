import { describe, expect, it } from "vitest";
import { ApiError, toApiError } from "../../src/api";

describe("command errors", () => {
  it("keeps the contract's {code, message}", () => {
    const e = toApiError({ code: "sign_in_failed", message: "invalid_client: Client authentication failed" });
    expect(e).toBeInstanceOf(ApiError);
    expect([e.code, e.message]).toEqual(["sign_in_failed", "invalid_client: Client authentication failed"]);
  });
  it("wraps a bare string", () => expect(toApiError("boom")).toMatchObject({ code: "unknown", message: "boom" }));
  it("never shows [object Object]", () => expect(toApiError(42).message).toMatch(/Unexpected/));
});
