import { BlockList, isIP } from "node:net";

/** A parsed CIDR allow-list entry (AllowedIPRange). */
export interface CidrRange {
  readonly text: string;
  contains(address: string): boolean;
}

/**
 * Parses `a.b.c.d/n` or `x:y::z/n` (a bare address means one host). Returns undefined for
 * anything else, so the API can name the field. Node's BlockList does the arithmetic.
 */
export function parseCidr(text: string): CidrRange | undefined {
  const slash = text.indexOf("/");
  const rawAddress = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(rawAddress);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  if (!/^[0-9]{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > max) return undefined;
  // An IPv4-mapped IPv6 range (::ffff:10.0.0.0/104) is the IPv4 range it maps.
  const mapped = family === 6 ? ipv4OfMapped(rawAddress) : undefined;
  const list = new BlockList();
  if (mapped !== undefined && prefix >= 96) list.addSubnet(mapped, prefix - 96, "ipv4");
  else list.addSubnet(rawAddress, prefix, family === 4 ? "ipv4" : "ipv6");
  return {
    text,
    contains(address) {
      const normal = normaliseAddress(address);
      if (normal === undefined) return false;
      return list.check(normal.address, normal.family);
    },
  };
}

/**
 * The socket's remote address as the family it really is: a dual-stack listener reports an
 * IPv4 peer as `::ffff:a.b.c.d`, which must be checked against IPv4 ranges.
 */
export function normaliseAddress(address: string): { address: string; family: "ipv4" | "ipv6" } | undefined {
  // A zone id (fe80::1%eth0) is local to the host and no part of the address.
  const bare = address.includes("%") ? address.slice(0, address.indexOf("%")) : address;
  const family = isIP(bare);
  if (family === 4) return { address: bare, family: "ipv4" };
  if (family !== 6) return undefined;
  const mapped = ipv4OfMapped(bare);
  return mapped === undefined ? { address: bare, family: "ipv6" } : { address: mapped, family: "ipv4" };
}

function ipv4OfMapped(address: string): string | undefined {
  const dotted = /^(?:0{0,4}:){0,5}:?ffff:([0-9]{1,3}(?:\.[0-9]{1,3}){3})$/i.exec(address)?.[1];
  if (dotted !== undefined && isIP(dotted) === 4) return dotted;
  // The hex form (::ffff:a00:1) that some stacks print.
  const hex = /^(?:0{0,4}:){0,5}:?ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(address);
  if (hex?.[1] === undefined || hex[2] === undefined) return undefined;
  const hi = parseInt(hex[1], 16);
  const lo = parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
