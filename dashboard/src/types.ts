// The JSON shapes the dashboard reads: frps v0.70's API (../shared/frp-captures/dashboard-api/) and Portway's
// own `/api/portway/clients`. Only the fields used here; everything may be missing from an older server.

/** `GET /api/serverinfo`. */
export interface ServerInfoJson {
  version?: string;
  bindPort?: number;
  vhostHTTPPort?: number;
  vhostHTTPSPort?: number;
  tcpmuxHTTPConnectPort?: number;
  subdomainHost?: string;
  maxPoolCount?: number;
  maxPortsPerClient?: number;
  heartbeatTimeout?: number;
  totalTrafficIn?: number;
  totalTrafficOut?: number;
  curConns?: number;
  clientCounts?: number;
  proxyTypeCount?: Record<string, number>;
}

/** One item of `GET /api/v2/proxies`. */
export interface V2ProxyJson {
  name?: string;
  user?: string;
  clientID?: string;
  spec?: { type?: string } & Record<string, unknown>;
  status?: {
    phase?: string;
    todayTrafficIn?: number;
    todayTrafficOut?: number;
    curConns?: number;
    lastStartAt?: number;
    lastCloseAt?: number;
  };
}

/** frps v2's envelope: `{code, msg, data}`. */
export interface V2Envelope<T> {
  code?: number;
  msg?: string;
  data?: T;
}

/** `data` of a v2 list. */
export interface V2Page<T> {
  total?: number;
  page?: number;
  pageSize?: number;
  items?: T[];
}

/** One item of `GET /api/clients`. */
export interface ClientJson {
  key?: string;
  user?: string;
  clientID?: string;
  runID?: string;
  version?: string;
  wireProtocol?: string;
  hostname?: string;
  clientIP?: string;
  firstConnectedAt?: number;
  lastConnectedAt?: number;
  disconnectedAt?: number;
  online?: boolean;
}

/** One item of `GET /api/portway/clients`: the identity behind a login. */
export interface PortwayClientJson {
  key?: string;
  auth?: { subject?: string | null; oidcClientID?: string | null; tokenExpiresAt?: number | null };
  policyRule?: string | null;
}

/** `GET /api/traffic/{name}`: seven days of bytes, today first. */
export interface TrafficJson {
  name?: string;
  trafficIn?: number[];
  trafficOut?: number[];
}
