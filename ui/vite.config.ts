import { defineConfig } from "vite";

// Tauri serves `dist/` itself; the dev server port is fixed so `tauri.conf.json` can point `devUrl` at it.
export default defineConfig({
  clearScreen: false,
  server: { host: "127.0.0.1", port: 1420, strictPort: true },
  preview: { host: "127.0.0.1" },
  build: { outDir: "dist", emptyOutDir: true, target: "es2021", sourcemap: false },
});
