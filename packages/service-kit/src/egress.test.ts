// The egress policy against a real loopback receiver. Every refusal is decided before a
// connection: the receiver counts TCP connections and must see none. No test sends traffic to a
// non-loopback address: those destinations are refused before connecting, and resolvers are
// injected for names that would need DNS.
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EgressRefusedError, createEgressPolicy, egressRequest, parseEgressAllow } from "./egress.js";
import type { EgressResolver } from "./egress.js";

describe("the default egress policy", () => {
  const policy = createEgressPolicy();
  const refused = (address: string): string | undefined => policy.refusal(address, address);

  it("refuses loopback, link-local, private, CGNAT, this-network, multicast and reserved addresses", () => {
    for (const address of ["127.0.0.1", "127.1.2.3", "169.254.169.254", "10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", "100.64.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255"]) {
      expect(refused(address), address).toBeDefined();
    }
    for (const address of ["::1", "::", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1"]) expect(refused(address), address).toBeDefined();
    expect(refused("169.254.169.254")).toMatch(/link-local/);
    expect(refused("127.0.0.1")).toMatch(/loopback/);
  });

  it("refuses IPv4 addresses hidden in IPv6 forms (mapped, compatible, NAT64, 6to4)", () => {
    for (const address of ["::ffff:127.0.0.1", "::ffff:7f00:1", "::ffff:a9fe:a9fe", "::127.0.0.1", "64:ff9b::a9fe:a9fe", "2002:a00:1::1", "0:0:0:0:0:ffff:10.0.0.1"]) {
      expect(refused(address), address).toMatch(/inside IPv6/);
    }
  });

  it("allows public addresses", () => {
    for (const address of ["93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8"]) expect(refused(address), address).toBeUndefined();
  });

  it("opens what EGRESS_ALLOW lists: CIDRs (IPv4 ones also in their IPv6 forms) and host names", () => {
    const allowing = createEgressPolicy({ allow: parseEgressAllow("127.0.0.1/32, fd00::/8, hooks.internal, *.corp.example") });
    expect(allowing.refusal("127.0.0.1", "127.0.0.1")).toBeUndefined();
    expect(allowing.refusal("::ffff:127.0.0.1", "::ffff:127.0.0.1")).toBeUndefined();
    expect(allowing.refusal("127.0.0.2", "127.0.0.2")).toBeDefined();
    expect(allowing.refusal("fd00::5", "fd00::5")).toBeUndefined();
    expect(allowing.refusal("10.0.0.1", "hooks.internal")).toBeUndefined();
    expect(allowing.refusal("10.0.0.1", "HOOKS.internal.")).toBeUndefined();
    expect(allowing.refusal("10.0.0.1", "ci.corp.example")).toBeUndefined();
    expect(allowing.refusal("10.0.0.1", "hooks.internal.evil.example")).toBeDefined();
  });

  it("names a bad EGRESS_ALLOW entry", () => {
    expect(() => parseEgressAllow("10.0.0.0/33")).toThrow(/entry 0 \("10.0.0.0\/33"\): prefix must be 0-32/);
    expect(() => parseEgressAllow("10.0.0.0/8,,x")).toThrow(/entry 1 is empty/);
    expect(() => parseEgressAllow("hooks!")).toThrow(/entry 0 \("hooks!"\) is neither/);
  });
});

describe("egressRequest against a loopback receiver", () => {
  let receiver: Server;
  let port: number;
  let connections = 0;
  const bodies: string[] = [];

  beforeAll(async () => {
    receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        bodies.push(body);
        if (req.url === "/redirect") {
          // Where an attacker would send us next: the cloud metadata endpoint.
          res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
        } else {
          res.writeHead(200).end("ok");
        }
      });
    });
    receiver.on("connection", () => connections++);
    await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
    port = (receiver.address() as AddressInfo).port;
  });

  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  async function refusedWithoutConnecting(url: string, policy = createEgressPolicy()): Promise<string> {
    const before = connections;
    const err = await egressRequest(policy, url, { method: "POST", body: "{}", timeoutMs: 2000 }).then(
      () => new Error("the request was sent"),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EgressRefusedError);
    expect(connections).toBe(before);
    return (err as Error).message;
  }

  it("refuses 127.0.0.1, [::ffff:127.0.0.1] and localhost before connecting", async () => {
    expect(await refusedWithoutConnecting(`http://127.0.0.1:${port}/hook`)).toMatch(/127.0.0.1 is a loopback address/);
    expect(await refusedWithoutConnecting(`http://[::ffff:127.0.0.1]:${port}/hook`)).toMatch(/inside IPv6/);
    expect(await refusedWithoutConnecting(`http://localhost:${port}/hook`)).toMatch(/localhost resolves to .*loopback/);
    // Decimal and hex spellings are normalized by the URL parser before the check.
    expect(await refusedWithoutConnecting(`http://2130706433:${port}/hook`)).toMatch(/loopback/);
    expect(await refusedWithoutConnecting(`http://0x7f.1:${port}/hook`)).toMatch(/loopback/);
  });

  it("refuses the metadata address and private ranges before connecting", async () => {
    expect(await refusedWithoutConnecting("http://169.254.169.254/latest/meta-data/")).toMatch(/link-local/);
    expect(await refusedWithoutConnecting("http://[fd00::1]/")).toMatch(/unique local/);
    expect(await refusedWithoutConnecting("http://10.1.2.3/")).toMatch(/private/);
    expect(await refusedWithoutConnecting("file:///etc/passwd")).toMatch(/only http and https/);
  });

  it("refuses a name whose resolver answers a private address, and one answering a public and a private address", async () => {
    const resolve: EgressResolver = (hostname, cb) =>
      cb(null, hostname === "mixed.example.test" ? [{ address: "93.184.216.34", family: 4 }, { address: "169.254.169.254", family: 4 }] : [{ address: "10.0.0.5", family: 4 }]);
    const policy = createEgressPolicy({ resolve });
    expect(await refusedWithoutConnecting("http://internal.example.test/", policy)).toMatch(/internal.example.test resolves to 10.0.0.5, a private address/);
    expect(await refusedWithoutConnecting("http://mixed.example.test/", policy)).toMatch(/169.254.169.254/);
  });

  it("resolves once and connects to the checked address (no second lookup to rebind)", async () => {
    let lookups = 0;
    // A rebinding resolver: the first answer is what the connection must use.
    const resolve: EgressResolver = (_hostname, cb) => {
      lookups++;
      cb(null, [{ address: lookups === 1 ? "127.0.0.1" : "10.9.9.9", family: 4 }]);
    };
    const policy = createEgressPolicy({ allow: parseEgressAllow("127.0.0.1/32"), resolve });
    const res = await egressRequest(policy, `http://rebind.example.test:${port}/hook`, { method: "POST", body: "once", timeoutMs: 5000 });
    expect(res.status).toBe(200);
    expect(lookups).toBe(1);
    expect(bodies.at(-1)).toBe("once");
  });

  it("with the receiver allowed, posts to it; a redirect is returned, never followed", async () => {
    const policy = createEgressPolicy({ allow: parseEgressAllow("127.0.0.1/32") });
    const res = await egressRequest(policy, `http://127.0.0.1:${port}/hook`, { method: "POST", body: '{"a":1}', headers: { "content-type": "application/json" }, timeoutMs: 5000 });
    expect(res).toMatchObject({ status: 200, truncated: false });
    expect(res.body.toString()).toBe("ok");
    expect(bodies.at(-1)).toBe('{"a":1}');
    const before = bodies.length;
    const redirected = await egressRequest(policy, `http://127.0.0.1:${port}/redirect`, { method: "POST", body: "r", timeoutMs: 5000 });
    expect(redirected.status).toBe(302);
    expect(redirected.headers.location).toBe("http://169.254.169.254/latest/meta-data/");
    expect(bodies.length).toBe(before + 1);
  });
});
