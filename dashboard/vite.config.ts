import { defineConfig } from "vitest/config";

// The server embeds dist/ at build time and serves it under /static/: relative URLs (base "./"), no CDN.
// Unit tests: the pure modules in src/ (no DOM), against the shapes of frps's captured answers.
export default defineConfig({
  base: "./",
  clearScreen: false,
  // `npm run dev`: the API of a server on frp's usual dashboard port, proxied.
  server: { host: "127.0.0.1", port: 5174, strictPort: true, proxy: { "/api": "http://127.0.0.1:7500" } },
  // Two pages: index.html (the server's dashboard) and client.html (the client's admin page, embedded by the
  // client as its /static/index.html).
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2021",
    sourcemap: false,
    assetsInlineLimit: 0,
    rollupOptions: { input: { index: "index.html", client: "client.html" } },
  },
  test: { include: ["tests/unit/**/*.test.ts"], environment: "node", testTimeout: 10_000 },
});
