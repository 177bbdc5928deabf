import { describe, expect, it } from "vitest";
import {
  PROXY_EXTRAS,
  addrError,
  fromProfile,
  ipError,
  isIPv4,
  isIPv6,
  isValid,
  newProxy,
  portError,
  proxyField,
  proxyNameError,
  sameProfile,
  toProfile,
  tokenEndpointError,
  validate,
  type ProfileForm,
} from "../../src/form";
import type { Profile } from "../../src/types";

const profile: Profile = {
  server: { addr: "tunnel.example.com", port: 7000, protocol: "tcp", tls: true, user: "", tcpMux: true },
  auth: { method: "oidc", tokenEndpointUrl: "https://auth.example.com/application/o/token/", clientId: "portway", audience: "", scope: "", hasSecret: true },
  proxies: [{ name: "web", type: "tcp", localIp: "127.0.0.1", localPort: 8080, remotePort: 6000, enabled: true, ...PROXY_EXTRAS }],
  visitors: [],
  options: { connectOnLaunch: false, startMinimized: true, launchAtLogin: false },
};

const form = (patch: Partial<ProfileForm> = {}): ProfileForm => ({ ...fromProfile(profile), ...patch });

describe("ports", () => {
  it.each(["1", "80", "65535", " 7000 "])("accepts %j", (p) => expect(portError(p)).toBeNull());
  it.each([
    ["", "Port is required"],
    ["0", "Port must be from 1 to 65535"],
    ["65536", "Port must be from 1 to 65535"],
    ["-1", "Port must be a whole number from 1 to 65535"],
    ["80.5", "Port must be a whole number from 1 to 65535"],
    ["1e3", "Port must be a whole number from 1 to 65535"],
    ["0x50", "Port must be a whole number from 1 to 65535"],
    ["abc", "Port must be a whole number from 1 to 65535"],
  ])("rejects %j", (p, msg) => expect(portError(p)).toBe(msg));
  it("names the field in the message", () => expect(portError("", "Remote port")).toBe("Remote port is required"));
});

describe("IP addresses", () => {
  it.each(["127.0.0.1", "0.0.0.0", "255.255.255.255", "10.1.2.3"])("IPv4 %s", (s) => expect(isIPv4(s)).toBe(true));
  it.each(["256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "a.b.c.d", ""])("not IPv4 %j", (s) => expect(isIPv4(s)).toBe(false));
  it.each(["::1", "::", "fe80::1", "2001:db8::8a2e:370:7334", "::ffff:192.0.2.1"])("IPv6 %s", (s) => expect(isIPv6(s)).toBe(true));
  it.each(["1:2:3", "::g", "1::2::3", "localhost", "[::1]", "127.0.0.1"])("not IPv6 %j", (s) => expect(isIPv6(s)).toBe(false));
  it("local IP messages", () => {
    expect(ipError("")).toBe("Local IP is required");
    expect(ipError("localhost")).toMatch(/IPv4 or IPv6/);
    expect(ipError(" ::1 ")).toBeNull();
  });
});

describe("server address and token endpoint", () => {
  it("address", () => {
    expect(addrError("")).toBe("Server address is required");
    expect(addrError("   ")).toBe("Server address is required");
    expect(addrError("wss://x")).toMatch(/without/);
    expect(addrError("a b")).toMatch(/spaces/);
    expect(addrError("198.51.100.7")).toBeNull();
  });
  it("token endpoint must be an http(s) URL", () => {
    expect(tokenEndpointError("")).toBe("Token endpoint URL is required");
    expect(tokenEndpointError("auth.example.com/token")).toMatch(/full URL/);
    expect(tokenEndpointError("ftp://auth.example.com/token")).toMatch(/http/);
    expect(tokenEndpointError("http://127.0.0.1:9000/application/o/token/")).toBeNull();
    expect(tokenEndpointError("https://auth.example.com/application/o/token/")).toBeNull();
  });
});

describe("server user and multiplexing", () => {
  it("an empty user is frp's default; a user takes a proxy name's characters", () => {
    expect(validate(form({ user: "" })).user).toBeUndefined();
    expect(validate(form({ user: " team.a_1 " })).user).toBeUndefined();
    expect(validate(form({ user: "a/b" })).user).toBe("Use only letters, digits, '.', '_' and '-'");
  });
  it("round-trips user (trimmed) and tcpMux", () => {
    const p = toProfile(form({ user: " alice ", tcpMux: false, protocol: "quic" }), true);
    expect(p.server).toEqual({ ...profile.server, user: "alice", tcpMux: false, protocol: "quic" });
    expect(fromProfile(p).tcpMux).toBe(false);
  });
});

describe("proxy names", () => {
  it.each(["web", "a.b_c-d", "X9"])("accepts %s", (n) => expect(proxyNameError(n, false)).toBeNull());
  it.each(["", "has space", "ünï", "a/b", "a:b"])("rejects %j", (n) => expect(proxyNameError(n, false)).not.toBeNull());
  it("rejects a taken name", () => expect(proxyNameError("web", true)).toMatch(/already/));
});

describe("validate", () => {
  it("a complete profile is valid", () => expect(validate(form())).toEqual({}));
  it("flags each bad field by key", () => {
    const f = form({ addr: "", port: "99999", tokenEndpointUrl: "nope", clientId: " " });
    expect(Object.keys(validate(f)).sort()).toEqual(["addr", "clientId", "port", "tokenEndpointUrl"]);
  });
  it("OIDC fields are not required for the token method", () => {
    expect(validate(form({ method: "token", tokenEndpointUrl: "", clientId: "" }))).toEqual({});
  });
  it("flags the second of two proxies with the same name", () => {
    const f = form();
    const dup = { ...f.proxies[0]!, key: 999 };
    f.proxies.push(dup);
    const e = validate(f);
    expect(e[proxyField(dup.key, "name")]).toMatch(/already/);
    expect(e[proxyField(f.proxies[0]!.key, "name")]).toBeUndefined();
    expect(isValid(e)).toBe(false);
  });
  it("flags proxy IP and ports", () => {
    const f = form();
    const p = f.proxies[0]!;
    Object.assign(p, { localIp: "300.1.1.1", localPort: "0", remotePort: "70000" });
    expect(Object.keys(validate(f)).sort()).toEqual(
      [proxyField(p.key, "localIp"), proxyField(p.key, "localPort"), proxyField(p.key, "remotePort")].sort(),
    );
  });
});

describe("conversion", () => {
  it("round-trips a profile", () => expect(toProfile(fromProfile(profile), true)).toEqual(profile));
  it("trims and parses", () => {
    const p = toProfile(form({ addr: " host ", port: " 7001 " }), false);
    expect(p.server).toMatchObject({ addr: "host", port: 7001 });
    expect(p.auth.hasSecret).toBe(false);
  });
  it("sameProfile ignores key order and hasSecret", () => {
    const reordered = JSON.parse(JSON.stringify({ options: profile.options, proxies: profile.proxies, auth: { ...profile.auth, hasSecret: false }, server: profile.server }));
    expect(sameProfile(profile, reordered)).toBe(true);
    expect(sameProfile(profile, { ...profile, server: { ...profile.server, port: 7001 } })).toBe(false);
  });
  it("new proxies get a free name and valid defaults apart from ports", () => {
    const f = form();
    const a = newProxy(f.proxies);
    f.proxies.push(a);
    const b = newProxy(f.proxies);
    expect([a.name, b.name]).toEqual(["proxy-1", "proxy-2"]);
    expect(a.localIp).toBe("127.0.0.1");
    expect(a.key).not.toBe(b.key);
  });
});

describe("proxy types", () => {
  const withProxy = (patch: Partial<ProfileForm["proxies"][number]>): ProfileForm => {
    const f = form();
    f.proxies = [{ ...f.proxies[0]!, ...patch }];
    return f;
  };
  const key = (f: ProfileForm, field: Parameters<typeof proxyField>[1]) => proxyField(f.proxies[0]!.key, field);

  it("http needs a custom domain or a subdomain, not a remote port", () => {
    const f = withProxy({ type: "http", remotePort: "" });
    expect(Object.keys(validate(f))).toEqual([key(f, "customDomains")]);
    expect(validate(withProxy({ type: "http", remotePort: "", subdomain: "app" }))).toEqual({});
    expect(validate(withProxy({ type: "https", remotePort: "", customDomains: "a.example.com, *.b.example.com" }))).toEqual({});
  });
  it("domains, subdomain, locations and basic auth are checked", () => {
    let f = withProxy({ type: "http", customDomains: "http://a.example.com" });
    expect(validate(f)[key(f, "customDomains")]).toMatch(/without http/);
    f = withProxy({ type: "http", customDomains: "a.example.com:8080" });
    expect(validate(f)[key(f, "customDomains")]).toMatch(/without a port/);
    f = withProxy({ type: "http", subdomain: "a.b" });
    expect(validate(f)[key(f, "subdomain")]).toMatch(/letters, digits/);
    f = withProxy({ type: "http", subdomain: "a", locations: "/api, static" });
    expect(validate(f)[key(f, "locations")]).toMatch(/starting with \//);
    f = withProxy({ type: "http", subdomain: "a", httpUser: "me" });
    expect(validate(f)[key(f, "httpPassword")]).toMatch(/password/);
    expect(validate(withProxy({ type: "http", subdomain: "a", httpUser: "me", hasHttpPassword: true }))).toEqual({});
    f = withProxy({ type: "tcpmux", subdomain: "a", httpPassword: "pw" });
    expect(validate(f)[key(f, "httpUser")]).toMatch(/user name/);
  });
  it("only the type's own fields are sent; tcpmux always uses httpconnect; the password never", () => {
    const f = withProxy({ type: "tcpmux", remotePort: "6000", customDomains: "ssh.example.com", locations: "/x", httpUser: "me", httpPassword: "pw", hostHeaderRewrite: "h" });
    const p = toProfile(f, true).proxies[0]!;
    expect(p).toMatchObject({ type: "tcpmux", remotePort: 0, customDomains: ["ssh.example.com"], locations: [], httpUser: "me", hostHeaderRewrite: "", multiplexer: "httpconnect" });
    expect(JSON.stringify(p)).not.toContain("pw");
    const back = fromProfile({ ...profile, proxies: [p] }).proxies[0]!;
    expect(back.customDomains).toBe("ssh.example.com");
    expect(back.httpPassword).toBe("");
  });
});
