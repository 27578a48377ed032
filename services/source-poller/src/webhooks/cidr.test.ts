import { describe, expect, it } from "vitest";
import { normaliseAddress, parseCidr } from "./cidr.js";

describe("parseCidr", () => {
  it("matches IPv4 ranges, including an IPv4 peer seen through a dual-stack socket", () => {
    const r = parseCidr("192.0.2.0/24");
    expect(r?.contains("192.0.2.7")).toBe(true);
    expect(r?.contains("192.0.3.7")).toBe(false);
    expect(r?.contains("::ffff:192.0.2.7")).toBe(true);
    expect(r?.contains("::ffff:c000:207")).toBe(true);
    expect(r?.contains("::ffff:198.51.100.1")).toBe(false);
    expect(r?.contains("2001:db8::1")).toBe(false);
  });

  it("matches IPv6 ranges and a bare address as one host", () => {
    const r = parseCidr("2001:db8::/32");
    expect(r?.contains("2001:db8:1::5")).toBe(true);
    expect(r?.contains("2001:db9::5")).toBe(false);
    expect(r?.contains("192.0.2.1")).toBe(false);
    expect(parseCidr("10.1.2.3")?.contains("10.1.2.3")).toBe(true);
    expect(parseCidr("10.1.2.3")?.contains("10.1.2.4")).toBe(false);
    expect(parseCidr("::1/128")?.contains("::1")).toBe(true);
  });

  it("reads an IPv4-mapped IPv6 range as the IPv4 range", () => {
    expect(parseCidr("::ffff:10.0.0.0/104")?.contains("10.200.0.1")).toBe(true);
    expect(parseCidr("::ffff:10.0.0.0/104")?.contains("11.0.0.1")).toBe(false);
  });

  it("refuses what is not a CIDR", () => {
    for (const bad of ["", "10.0.0.0/33", "2001:db8::/129", "10.0.0/8", "example.com/8", "10.0.0.0/-1", "10.0.0.0/ 8", "10.0.0.0/8/8"]) {
      expect(parseCidr(bad), bad).toBeUndefined();
    }
  });

  it("normalises socket addresses (zone ids dropped, mapped IPv4 unwrapped)", () => {
    expect(normaliseAddress("::ffff:127.0.0.1")).toEqual({ address: "127.0.0.1", family: "ipv4" });
    expect(normaliseAddress("fe80::1%eth0")).toEqual({ address: "fe80::1", family: "ipv6" });
    expect(normaliseAddress("not an address")).toBeUndefined();
  });
});
