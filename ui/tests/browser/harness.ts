// Browser-test harness: serves ui/dist on 127.0.0.1 (port 0), drives Debian's Chromium with playwright-core,
// and opens the page with the Tauri IPC mocked (see tauri-mock.ts).
import { PROXY_EXTRAS } from "../../src/form";
import { createServer, type Server } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";
import type { AddressInfo } from "node:net";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { installTauriMock, type MockSeed } from "./tauri-mock";
import type { Profile, Status } from "../../src/types";

export const UI_DIR = resolve(import.meta.dirname, "../..");
const DIST = join(UI_DIR, "dist");
export const ARTIFACTS = join(UI_DIR, "test-artifacts");
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

function serveDist(): Promise<{ server: Server; url: string }> {
  if (!existsSync(join(DIST, "index.html"))) throw new Error(`${DIST}/index.html is missing: run 'npm run build' first`);
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    const file = normalize(join(DIST, path === "/" ? "index.html" : path));
    if (!file.startsWith(DIST) || !existsSync(file)) {
      res.writeHead(404).end("not found");
      return;
    }
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream", "cache-control": "no-store" });
    res.end(readFileSync(file));
  });
  return new Promise((ok) =>
    server.listen(0, "127.0.0.1", () => ok({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` })),
  );
}

export const PROFILE: Profile = {
  server: { addr: "tunnel.example.com", port: 7000, protocol: "tcp", tls: true, user: "", tcpMux: true },
  auth: {
    method: "oidc",
    tokenEndpointUrl: "https://auth.example.com/application/o/token/",
    clientId: "portway-laptop",
    audience: "portway",
    scope: "",
    hasSecret: true,
  },
  proxies: [
    { name: "web", type: "tcp", localIp: "127.0.0.1", localPort: 8080, remotePort: 6000, enabled: true, ...PROXY_EXTRAS },
    { name: "dns", type: "udp", localIp: "127.0.0.1", localPort: 53, remotePort: 6053, enabled: true, ...PROXY_EXTRAS },
  ],
  options: { connectOnLaunch: false, startMinimized: false, launchAtLogin: false },
};

export const DISCONNECTED: Status = { conn: { state: "disconnected" }, proxies: {} };

export function seed(patch: Partial<MockSeed> = {}): MockSeed {
  const now = Date.now();
  return {
    profile: structuredClone(PROFILE),
    status: structuredClone(DISCONNECTED),
    keychain: { available: true, code: null, detail: null },
    logs: [
      { ts: now - 3000, level: "DEBUG", target: "portway_client::transport", message: "dialing tunnel.example.com:7000" },
      { ts: now - 2000, level: "INFO", target: "portway_client::control", message: "logged in, run id 4f2a" },
      { ts: now - 1000, level: "WARN", target: "portway_client::proxy", message: "proxy dns: local 127.0.0.1:53 refused" },
    ],
    tokenInfo: {
      issuer: "https://auth.example.com/application/o/portway/",
      subject: "ak-portway-laptop",
      audience: ["portway"],
      clientId: "portway-laptop",
      expiresAt: Math.floor(now / 1000) + 300,
      expiresIn: 300,
      scope: "openid",
      algorithm: "RS256",
    },
    exportText: '# The secret is in the system keychain (service "portway").\nserverAddr = "tunnel.example.com"\nserverPort = 7000\n',
    failures: {},
    replies: {},
    ...patch,
  };
}

export class Harness {
  private browser!: Browser;
  private server!: Server;
  url = "";
  private contexts: BrowserContext[] = [];

  async start(): Promise<void> {
    const s = await serveDist();
    this.server = s.server;
    this.url = s.url;
    this.browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // playwright-core runs Chromium with a fresh temporary --user-data-dir of its own (it refuses ours).
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  }

  /** After each test: close its pages and fail if any of them threw an uncaught exception. */
  async endTest(): Promise<void> {
    const pages = this.contexts.flatMap((c) => c.pages());
    const errors = pages.flatMap((p) => pageErrors(p));
    await Promise.all(this.contexts.map((c) => c.close().catch(() => {})));
    this.contexts = [];
    if (errors.length) throw new Error(`uncaught page errors:\n${errors.join("\n")}`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.contexts.map((c) => c.close().catch(() => {})));
    await this.browser?.close();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }

  /** A fresh page with the mock seeded, loaded and past its start-up reads. */
  async open(s: MockSeed = seed(), opts: { colorScheme?: "light" | "dark"; locale?: string } = {}): Promise<Page> {
    // The OS locale the page sees (navigator.language, Intl): English unless a test asks for another.
    const ctx = await this.browser.newContext({ viewport: { width: 1000, height: 900 }, colorScheme: opts.colorScheme ?? "light", locale: opts.locale ?? "en-US" });
    this.contexts.push(ctx);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    uncaught.set(page, errors);
    await page.addInitScript(installTauriMock, s);
    await page.goto(this.url);
    // Start-up is done once its one read (page_start) was answered and the log history is on screen.
    await page.waitForFunction(() => (window.__mock?.calls ?? []).some((c) => c.cmd === "page_start"));
    await page.waitForTimeout(50);
    return page;
  }
}

const uncaught = new WeakMap<Page, string[]>();
/** Uncaught exceptions the page threw since it was opened. */
export const pageErrors = (page: Page): string[] => uncaught.get(page) ?? [];

export const tid = (id: string): string => `[data-testid="${id}"]`;

export async function calls(page: Page, cmd?: string): Promise<{ cmd: string; args: Record<string, unknown> | undefined }[]> {
  const all = await page.evaluate(() => window.__mock.calls);
  return cmd ? all.filter((c) => c.cmd === cmd) : all;
}

export async function emit(page: Page, event: string, payload: unknown): Promise<void> {
  await page.evaluate(([e, p]) => window.__mock.emit(e as string, p), [event, payload] as const);
}
