// The server's API, by relative URL: the page is served at /static/, the API at /api/ on the same origin (the
// browser resends the basic-auth credentials it used for the page).
import type { ClientJson, PortwayClientJson, ServerInfoJson, TrafficJson, V2Envelope, V2Page, V2ProxyJson } from "./types";

/**
 * The absolute URL of API `path` for a page at `pageHref` (served at `/static/`). Credentials in the page's URL
 * (`http://user:pass@host/static/`) are dropped: fetch refuses such URLs, and the browser sends the credentials it
 * cached for the page anyway.
 */
export function apiUrl(path: string, pageHref: string): string {
  const u = new URL(`../api/${path}`, pageHref);
  u.username = "";
  u.password = "";
  return u.href;
}

export class ApiError extends Error {}

/** The text of an answer, or an `ApiError` with its error text (frp's `{"Code","Msg"}` or plain text). */
export async function request(path: string, init?: RequestInit): Promise<string> {
  let r: Response;
  try {
    r = await fetch(apiUrl(path, window.location.href), { credentials: "same-origin", cache: "no-store", ...init });
  } catch (e) {
    throw new ApiError(`cannot reach the API (${e instanceof Error ? e.message : String(e)})`);
  }
  const text = await r.text();
  if (!r.ok) {
    let msg = text.trim();
    try {
      const j = JSON.parse(text) as { Msg?: string; msg?: string };
      msg = j.Msg ?? j.msg ?? msg;
    } catch {
      // plain text body
    }
    throw new ApiError(`${path}: ${r.status} ${msg}`);
  }
  return text;
}

async function call<T>(path: string, init?: RequestInit): Promise<T> {
  const text = await request(path, init);
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(`${path}: the answer is not JSON`);
  }
}

export const serverInfo = () => call<ServerInfoJson>("serverinfo");
export const clients = () => call<ClientJson[]>("clients");

/** Portway's identities; an empty list from a server without that API (frps). */
export async function portwayClients(): Promise<PortwayClientJson[]> {
  try {
    return await call<PortwayClientJson[]>("portway/clients");
  } catch {
    return [];
  }
}

/** Every proxy, all pages. */
export async function proxies(): Promise<V2ProxyJson[]> {
  const all: V2ProxyJson[] = [];
  for (let page = 1; page <= 100; page++) {
    const r = await call<V2Envelope<V2Page<V2ProxyJson>>>(`v2/proxies?page=${page}&pageSize=1000`);
    const items = r.data?.items ?? [];
    all.push(...items);
    if (items.length === 0 || all.length >= (r.data?.total ?? 0)) break;
  }
  return all;
}

export const traffic = (name: string) => call<TrafficJson>(`traffic/${encodeURIComponent(name)}`);

/** Removes offline proxies; the number removed. */
export async function pruneOffline(): Promise<number> {
  const r = await call<V2Envelope<{ cleared?: number }>>("v2/system/prune?type=offline_proxies", { method: "POST" });
  return r.data?.cleared ?? 0;
}
