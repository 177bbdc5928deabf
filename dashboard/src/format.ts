// Text formatting. `now` and the time zone are parameters so tests are deterministic.

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** Bytes with binary units: "0 B", "512 B", "1.5 KiB", "12 MiB" (3 significant figures at most). */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return "–";
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  const digits = v < 10 ? 2 : v < 100 ? 1 : 0;
  return `${Number(v.toFixed(digits))} ${UNITS[u]}`;
}

/** Whole seconds since the epoch as a short local date and time; "–" for none. */
export function formatTime(secs: number | null, timeZone?: string): string {
  if (secs === null) return "–";
  return new Date(secs * 1000).toLocaleString("en-GB", {
    timeZone,
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

/** How long until (or since) `secs`: "in 5 min", "2 h ago". */
export function relative(secs: number, nowSecs: number): string {
  const d = secs - nowSecs;
  const a = Math.abs(d);
  const text = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return d >= 0 ? `in ${text}` : `${text} ago`;
}
