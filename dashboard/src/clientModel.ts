// The client admin page's pure data shaping: frpc's `/api/status` JSON in, what the page shows out (no DOM, no
// fetch, so unit tests cover it).
import { PROXY_TYPES } from "./model";

/** What stands in for a secret in `GET /api/config` (the client's `admin::REDACTED`). */
export const REDACTED = "<redacted>";

export interface ClientProxyRow {
  name: string;
  type: string;
  /** frpc's phase: `new`, `wait start`, `running`, `start error`, `check failed`. */
  status: string;
  running: boolean;
  /** The server's refusal or the health check's reason; "" if none. */
  err: string;
  /** localIP:localPort; "" for a plugin. */
  local: string;
  plugin: string;
  /** serverAddr:port or the URL once running; "" before. */
  remote: string;
  /** Kept in `store.path` (managed through the store API) rather than the config file. */
  stored: boolean;
}

export interface ClientProxyGroup {
  type: string;
  proxies: ClientProxyRow[];
  running: number;
}

const str = (v: unknown): string => (typeof v === "string" ? v : "");

function typeRank(t: string): number {
  const i = PROXY_TYPES.indexOf(t);
  return i < 0 ? PROXY_TYPES.length : i;
}

/**
 * frpc's `/api/status` body (`{"tcp": [{name, type, status, err, local_addr, plugin, remote_addr}], ...}`) as groups
 * in frp's type order, by name within a group; anything that is not a list of named objects is dropped.
 */
export function statusGroups(body: unknown): ClientProxyGroup[] {
  if (!body || typeof body !== "object" || Array.isArray(body)) return [];
  const groups: ClientProxyGroup[] = [];
  for (const [key, list] of Object.entries(body as Record<string, unknown>)) {
    if (!Array.isArray(list)) continue;
    const proxies = list
      .filter((p): p is Record<string, unknown> => !!p && typeof p === "object" && str((p as Record<string, unknown>).name) !== "")
      .map((p) => {
        const status = str(p.status) || "new";
        return {
          name: str(p.name),
          type: str(p.type) || key,
          status,
          running: status === "running",
          err: str(p.err),
          local: str(p.local_addr),
          plugin: str(p.plugin),
          remote: str(p.remote_addr),
          stored: p.source === "store",
        };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
    if (proxies.length > 0) groups.push({ type: key, proxies, running: proxies.filter((p) => p.running).length });
  }
  return groups.sort((a, b) => typeRank(a.type) - typeRank(b.type) || a.type.localeCompare(b.type));
}

/** How many secrets `GET /api/config` masked in `text`. */
export function maskedSecrets(text: string): number {
  return text.split(REDACTED).length - 1;
}

/** Why the text is not sent ("" if it may be): the client refuses an empty file. */
export function saveProblem(text: string): string {
  return text.trim() === "" ? "The configuration is empty; the client refuses an empty file." : "";
}
