import { defineConfig } from "vitest/config";

// Unit tests: pure functions in src/ (no DOM, no browser).
export default defineConfig({
  test: { include: ["tests/unit/**/*.test.ts"], environment: "node", testTimeout: 10_000 },
});
