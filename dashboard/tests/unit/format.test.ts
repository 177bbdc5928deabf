import { describe, expect, it } from "vitest";
import { layoutChart, MARGIN, niceMax } from "../../src/chart";
import { formatBytes, formatTime, relative } from "../../src/format";
import { trafficSeries } from "../../src/model";

describe("formatBytes", () => {
  it("uses binary units with at most 3 significant figures", () => {
    expect(formatBytes(0)).toBe("0 B");
    expect(formatBytes(39)).toBe("39 B");
    expect(formatBytes(1023)).toBe("1023 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(12.34 * 1024 * 1024)).toBe("12.3 MiB");
    expect(formatBytes(300 * 1024 ** 3)).toBe("300 GiB");
    expect(formatBytes(-1)).toBe("–");
  });
});

describe("times", () => {
  it("formats epoch seconds in the given zone, none as a dash", () => {
    expect(formatTime(1795974405, "UTC")).toBe("29 Nov 2026, 17:46");
    expect(formatTime(null)).toBe("–");
  });
  it("says how far off a time is", () => {
    expect(relative(1000 + 300, 1000)).toBe("in 5 min");
    expect(relative(1000 - 7200, 1000)).toBe("2 h ago");
    expect(relative(1000, 1000)).toBe("in 0 s");
  });
});

describe("chart layout", () => {
  it("rounds the scale up to a nice figure", () => {
    expect(niceMax(0)).toBe(1024);
    expect(niceMax(39)).toBe(50);
    expect(niceMax(1000)).toBe(1000);
    expect(niceMax(1500)).toBe(2048);
    expect(niceMax(3 * 1024 * 1024)).toBe(5 * 1024 * 1024);
  });

  it("draws two bars a day, in proportion, inside the box", () => {
    const s = trafficSeries({ name: "web", trafficIn: [50, 25, 0, 0, 0, 0, 0], trafficOut: [10, 0, 0, 0, 0, 0, 0] });
    const L = layoutChart(s, 700, 220);
    expect(L.max).toBe(50);
    expect(L.bars).toHaveLength(14);
    expect(L.days.map((d) => d.label).at(-1)).toBe("today");
    const plotH = 220 - MARGIN.top - MARGIN.bottom;
    const todayIn = L.bars.find((b) => b.kind === "in" && b.label.startsWith("today"));
    const yesterdayIn = L.bars.find((b) => b.kind === "in" && b.label.startsWith("1 d ago"));
    expect(todayIn?.height).toBeCloseTo(plotH);
    expect(yesterdayIn?.height).toBeCloseTo(plotH / 2);
    for (const b of L.bars) {
      expect(b.x).toBeGreaterThanOrEqual(MARGIN.left);
      expect(b.x + b.width).toBeLessThanOrEqual(700 - MARGIN.right);
      expect(b.y + b.height).toBeCloseTo(MARGIN.top + plotH);
    }
    expect(L.ticks.map((t) => t.label)).toEqual(["0 B", "12.5 B", "25 B", "37.5 B", "50 B"]);
  });
});
