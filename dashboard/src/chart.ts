// The traffic chart's geometry (pure): grouped bars, in and out per day, on a scale with round ticks.
import { formatBytes } from "./format";
import type { TrafficSeries } from "./model";

export interface Bar {
  x: number;
  y: number;
  width: number;
  height: number;
  kind: "in" | "out";
  value: number;
  label: string;
}

export interface Tick {
  y: number;
  label: string;
}

export interface ChartLayout {
  width: number;
  height: number;
  bars: Bar[];
  ticks: Tick[];
  /** Day labels under each group: x is the group's centre. */
  days: { x: number; label: string }[];
  /** The top of the scale in bytes. */
  max: number;
}

/** A "nice" scale top ≥ `v`: 1, 2 or 5 times a power of 1024 or 10 steps, never 0. */
export function niceMax(v: number): number {
  if (!(v > 0)) return 1024;
  const unit = Math.pow(1024, Math.floor(Math.log(v) / Math.log(1024)));
  const r = v / unit;
  const step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 1024].find((s) => s >= r) ?? 1024;
  return step * unit;
}

export const MARGIN = { left: 64, right: 8, top: 8, bottom: 24 };

/** Lays out `s` in a `width` × `height` box. */
export function layoutChart(s: TrafficSeries, width = 640, height = 220): ChartLayout {
  const max = niceMax(Math.max(0, ...s.days.flatMap((d) => [d.in, d.out])));
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const n = Math.max(1, s.days.length);
  const group = plotW / n;
  const barW = Math.max(1, group * 0.35);
  const yOf = (v: number) => MARGIN.top + plotH - (v / max) * plotH;
  const bars: Bar[] = [];
  const days: { x: number; label: string }[] = [];
  s.days.forEach((d, i) => {
    const gx = MARGIN.left + i * group;
    const centre = gx + group / 2;
    days.push({ x: centre, label: d.label });
    for (const [kind, value, x] of [
      ["in", d.in, centre - barW],
      ["out", d.out, centre],
    ] as const) {
      const y = yOf(value);
      bars.push({ x, y, width: barW, height: MARGIN.top + plotH - y, kind, value, label: `${d.label}: ${kind} ${formatBytes(value)}` });
    }
  });
  const ticks: Tick[] = [0, 0.25, 0.5, 0.75, 1].map((f) => ({ y: yOf(max * f), label: formatBytes(max * f) }));
  return { width, height, bars, ticks, days, max };
}
