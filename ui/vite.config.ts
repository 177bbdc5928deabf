import { defineConfig } from "vite";

// Tauri serves `dist/` itself; the dev server port is fixed to match `devUrl` in tauri.conf.json (127.0.0.1:5173).
export default defineConfig({
  clearScreen: false,
  server: { host: "127.0.0.1", port: 5173, strictPort: true },
  preview: { host: "127.0.0.1" },
  build: { outDir: "dist", emptyOutDir: true, target: "es2021", sourcemap: false },
});
