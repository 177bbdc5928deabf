import { defineConfig } from "vitest/config";

// Browser tests: the built page (dist/) in headless Chromium with the Tauri IPC mocked.
// One Chromium at a time: the machine has 2 cores.
export default defineConfig({
  test: {
    include: ["tests/browser/**/*.test.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
