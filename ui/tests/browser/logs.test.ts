// Live logs: history from get_logs, lines from the log event, level filter, copy, DOM bound.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Harness, emit, pageErrors, seed, tid } from "./harness";
import type { LogLine } from "../../src/types";

const hx = new Harness();
beforeAll(() => hx.start());
afterEach(() => hx.endTest());
afterAll(() => hx.stop());

const lines = (page: import("playwright-core").Page) => page.locator(`${tid("log-view")} .log-line`).allTextContents();

describe("logs", () => {
  it("shows history and live lines at INFO and above by default; the filter changes what is shown", async () => {
    const page = await hx.open();
    expect(await page.evaluate(() => window.__mock.listeners("log"))).toBe(1);
    let shown = await lines(page);
    expect(shown).toHaveLength(2);
    expect(shown[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3}( [AP]M)? INFO  portway_client::control: logged in, run id 4f2a$/);
    expect(shown[1]).toContain("WARN  portway_client::proxy: proxy dns: local 127.0.0.1:53 refused");

    await emit(page, "log", { ts: Date.now(), level: "ERROR", target: "portway_client::control", message: "login refused: token expired" } satisfies LogLine);
    await emit(page, "log", { ts: Date.now(), level: "DEBUG", target: "portway_client::mux", message: "stream 3 opened" } satisfies LogLine);
    shown = await lines(page);
    expect(shown).toHaveLength(3);
    expect(shown[2]).toContain("ERROR portway_client::control: login refused: token expired");

    await page.selectOption(tid("log-level"), "WARN");
    shown = await lines(page);
    expect(shown.map((l) => / (TRACE|DEBUG|INFO|WARN|ERROR) /.exec(l)?.[1])).toEqual(["WARN", "ERROR"]);

    await page.selectOption(tid("log-level"), "TRACE");
    expect(await lines(page)).toHaveLength(5);
  });

  it("Copy puts exactly the visible lines on the clipboard", async () => {
    const page = await hx.open();
    await page.selectOption(tid("log-level"), "WARN");
    await page.click(tid("copy-logs"));
    await page.waitForFunction(() => window.__mock.copied.length > 0);
    const copied = await page.evaluate(() => window.__mock.copied[0]!);
    expect(copied).toBe((await lines(page)).join("\n"));
    expect(copied.split("\n")).toHaveLength(1);
    expect(copied).toContain("proxy dns: local 127.0.0.1:53 refused");
  });

  it("keeps at most 2000 lines in the DOM", async () => {
    const page = await hx.open(seed({ logs: [] }));
    await page.evaluate(() => {
      for (let i = 0; i < 2100; i++) window.__mock.emit("log", { ts: Date.now(), level: "INFO", target: "t", message: `line ${i}` });
    });
    const count = await page.locator(`${tid("log-view")} .log-line`).count();
    expect(count).toBe(2000);
    await expect(page.locator(`${tid("log-view")} .log-line`).first().textContent()).resolves.toMatch(/line 100$/);
    await expect(page.locator(`${tid("log-view")} .log-line`).last().textContent()).resolves.toMatch(/line 2099$/);
  });

  it("renders in the dark scheme without page errors", async () => {
    const page = await hx.open(seed(), { colorScheme: "dark" });
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg).toBe("rgb(21, 24, 29)");
    expect(pageErrors(page)).toEqual([]);
  });
});
