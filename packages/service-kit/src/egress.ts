import { lookup as dnsLookup } from "node:dns";
import type { LookupAddress } from "node:dns";
import type { IncomingHttpHeaders } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import type { LookupFunction } from "node:net";

/**
 * Every outbound HTTP request Sluice makes on behalf of a pipeline author (approval
 * `NotificationUrl` today, the Http provider later) goes through `egressRequest`, so a URL
 * cannot make a service reach what only the service can reach: loopback, the cloud metadata
 * endpoint, private networks. The check is made on the address actually connected to: the host
 * is resolved once, inside the socket's own `lookup`, and the socket connects to that checked
 * address, so a name that resolves to a public address for a check and to 127.0.0.1 for the
 * connection (DNS rebinding) gains nothing. Redirects are never followed. Operators open holes
 * with `EGRESS_ALLOW` (CIDRs and host names).
 */

/** One `EGRESS_ALLOW` entry: a CIDR (`10.1.0.0/16`, `127.0.0.1`, `fd00::/8`) or a host name (`hooks.internal`, `*.corp.example`). */
export type EgressRule =
  | { readonly kind: "cidr"; readonly text: string; readonly bytes: Uint8Array; readonly prefix: number }
  | { readonly kind: "host"; readonly text: string; readonly host: string; readonly subdomains: boolean };

/** Thrown when the policy refuses a destination; nothing was sent. */
export class EgressRefusedError extends Error {
  override readonly name = "EgressRefusedError";
}

/** Thrown when the whole request took longer than its timeout. */
export class EgressTimeoutError extends Error {
  override readonly name = "EgressTimeoutError";
}

/** Resolves a host name to every address (the shape of `dns.lookup` with `all: true`). */
export type EgressResolver = (hostname: string, callback: (err: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => void) => void;

/** Decides which addresses outbound requests may connect to. */
export interface EgressPolicy {
  /** Why connecting to `address` (an IP) for `host` is refused, or undefined when it is allowed. */
  refusal(address: string, host: string): string | undefined;
  /** Resolves host names; the system resolver unless a test injects one. */
  readonly resolve: EgressResolver;
}

/** Options of `createEgressPolicy`. */
export interface EgressPolicyOptions {
  /** Destinations allowed although private (EGRESS_ALLOW). */
  readonly allow?: readonly EgressRule[] | undefined;
  /** @default dns.lookup with `all: true` */
  readonly resolve?: EgressResolver | undefined;
}

/** Ranges refused unless allowed: not the public internet. */
const REFUSED_RANGES: readonly (readonly [string, string])[] = [
  ["0.0.0.0/8", "a 'this network' address"],
  ["10.0.0.0/8", "a private address"],
  ["100.64.0.0/10", "a carrier-grade NAT address"],
  ["127.0.0.0/8", "a loopback address"],
  ["169.254.0.0/16", "a link-local address (cloud metadata lives there)"],
  ["172.16.0.0/12", "a private address"],
  ["192.0.0.0/24", "an IETF protocol address"],
  ["192.0.2.0/24", "a documentation address"],
  ["192.168.0.0/16", "a private address"],
  ["198.18.0.0/15", "a benchmarking address"],
  ["198.51.100.0/24", "a documentation address"],
  ["203.0.113.0/24", "a documentation address"],
  ["224.0.0.0/4", "a multicast address"],
  ["240.0.0.0/4", "a reserved or broadcast address"],
  ["::/128", "the unspecified address"],
  ["::1/128", "a loopback address"],
  ["100::/64", "a discard address"],
  ["2001::/32", "a Teredo address"],
  ["2001:db8::/32", "a documentation address"],
  ["64:ff9b:1::/48", "a local NAT64 address"],
  ["fc00::/7", "a private (unique local) address"],
  ["fe80::/10", "a link-local address"],
  ["fec0::/10", "a site-local address"],
  ["ff00::/8", "a multicast address"],
];

const REFUSED = REFUSED_RANGES.map(([cidr, label]) => ({ ...parseCidr(cidr), label }));

/** Creates a policy: the refused ranges above, minus what `allow` opens. */
export function createEgressPolicy(opts: EgressPolicyOptions = {}): EgressPolicy {
  const allow = opts.allow ?? [];
  const resolve: EgressResolver = opts.resolve ?? ((hostname, callback) => dnsLookup(hostname, { all: true, verbatim: true }, callback));
  return {
    resolve,
    refusal(address, host) {
      const name = normalizeHost(host);
      if (allow.some((r) => r.kind === "host" && (r.host === name || (r.subdomains && name.endsWith(`.${r.host}`))))) return undefined;
      const bytes = ipBytes(address);
      if (bytes === undefined) return `${address} is not an IP address`;
      // An IPv6 address carrying an IPv4 one (::ffff:127.0.0.1, 64:ff9b::a9fe:a9fe) is judged as that IPv4 address too.
      const forms = [bytes, ...embeddedIpv4(bytes)];
      if (allow.some((r) => r.kind === "cidr" && forms.some((f) => inRange(f, r.bytes, r.prefix)))) return undefined;
      for (const form of forms) {
        const range = REFUSED.find((r) => inRange(form, r.bytes, r.prefix));
        if (range !== undefined) return form === bytes ? range.label : `${range.label} (IPv4 ${ipv4Text(form)} inside IPv6)`;
      }
      return undefined;
    },
  };
}

/** Parses EGRESS_ALLOW: comma-separated CIDRs, IP addresses and host names; errors name the entry. */
export function parseEgressAllow(spec: string): EgressRule[] {
  return spec.split(",").map((raw, i): EgressRule => {
    const text = raw.trim();
    if (text === "") throw new Error(`entry ${i} is empty`);
    if (text.includes("/") || isIP(text) !== 0) {
      try {
        return { kind: "cidr", text, ...parseCidr(text) };
      } catch (err) {
        throw new Error(`entry ${i} ("${text}"): ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const subdomains = text.startsWith("*.");
    const host = normalizeHost(subdomains ? text.slice(2) : text);
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host)) {
      throw new Error(`entry ${i} ("${text}") is neither a CIDR (10.0.0.0/8), an IP address nor a host name (hooks.internal, *.corp.example)`);
    }
    return { kind: "host", text, host, subdomains };
  });
}

/** Options of one request. */
export interface EgressRequest {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  /** For the whole request, connect to last byte. */
  readonly timeoutMs: number;
  /** Bytes of the response body kept; the rest is dropped and `truncated` set. @default 65536 */
  readonly maxResponseBytes?: number;
}

/** The answer; a redirect is returned as such, never followed. */
export interface EgressResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly truncated: boolean;
}

/**
 * Sends one HTTP(S) request if the policy allows its destination. Refusals are decided before
 * any connection: an IP literal is checked at once, a host name inside the socket's lookup.
 * Rejects with `EgressRefusedError`, `EgressTimeoutError`, or the network error.
 */
export function egressRequest(policy: EgressPolicy, url: string, req: EgressRequest): Promise<EgressResponse> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return Promise.reject(new EgressRefusedError("the URL is not absolute"));
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") return Promise.reject(new EgressRefusedError(`only http and https are allowed, not ${target.protocol}`));
  const host = target.hostname.replace(/^\[(.*)\]$/, "$1");
  if (isIP(host) !== 0) {
    const why = policy.refusal(host, host);
    if (why !== undefined) return Promise.reject(new EgressRefusedError(`${host} is ${why}`));
  }
  const maxBytes = req.maxResponseBytes ?? 65_536;
  const send = target.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise<EgressResponse>((resolve, reject) => {
    // A fresh connection per request (no agent): the lookup below runs for every request.
    const outgoing = send(target, { method: req.method ?? "GET", headers: req.headers, agent: false, lookup: guardedLookup(policy, host) }, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      res.on("data", (chunk: Buffer) => {
        if (kept + chunk.length > maxBytes) {
          truncated = true;
          chunks.push(chunk.subarray(0, maxBytes - kept));
          kept = maxBytes;
          res.destroy();
          finish();
          return;
        }
        chunks.push(chunk);
        kept += chunk.length;
      });
      const finish = (): void => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), truncated });
      };
      res.on("end", finish);
      res.on("error", (err) => {
        clearTimeout(timer);
        if (!truncated) reject(err);
      });
    });
    const timer = setTimeout(() => outgoing.destroy(new EgressTimeoutError(`no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    outgoing.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    outgoing.end(req.body);
  });
}

/** The socket's lookup: resolve once, refuse if any address is refused, connect only to what was checked. */
function guardedLookup(policy: EgressPolicy, host: string): LookupFunction {
  return (hostname, options, callback) => {
    policy.resolve(hostname, (err, addresses) => {
      if (err !== null) return callback(err, "", 0);
      const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
      const first = wanted[0];
      if (first === undefined) return callback(Object.assign(new Error(`${hostname} has no address`), { code: "ENOTFOUND" }), "", 0);
      // All or nothing: a name answering with one public and one internal address is not trusted.
      for (const a of wanted) {
        const why = policy.refusal(a.address, host);
        if (why !== undefined) return callback(new EgressRefusedError(`${host} resolves to ${a.address}, ${why}`), "", 0);
      }
      if (options.all === true) callback(null, wanted);
      else callback(null, first.address, first.family);
    });
  };
}

function normalizeHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, "");
}

function parseCidr(text: string): { bytes: Uint8Array; prefix: number } {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const bytes = ipBytes(address);
  if (bytes === undefined) throw new Error(`"${address}" is not an IP address`);
  const max = bytes.length * 8;
  const prefixText = slash < 0 ? String(max) : text.slice(slash + 1);
  const prefix = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefix > max) throw new Error(`prefix must be 0-${max}`);
  return { bytes, prefix };
}

function inRange(address: Uint8Array, network: Uint8Array, prefix: number): boolean {
  if (address.length !== network.length) return false;
  for (let bit = 0; bit < prefix; bit += 8) {
    const bits = Math.min(8, prefix - bit);
    const mask = (0xff << (8 - bits)) & 0xff;
    const i = bit / 8;
    if (((address[i] ?? 0) & mask) !== ((network[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 addresses an IPv6 address stands for: mapped, compatible, NAT64 and 6to4 forms. */
function embeddedIpv4(b: Uint8Array): Uint8Array[] {
  if (b.length !== 16) return [];
  const zero = (from: number, to: number): boolean => b.subarray(from, to).every((x) => x === 0);
  const forms: Uint8Array[] = [];
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) forms.push(b.subarray(12, 16)); // ::ffff:a.b.c.d
  else if (zero(0, 12) && !zero(12, 16)) forms.push(b.subarray(12, 16)); // ::a.b.c.d (deprecated)
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) forms.push(b.subarray(12, 16)); // 64:ff9b::/96
  if (b[0] === 0x20 && b[1] === 0x02) forms.push(b.subarray(2, 6)); // 2002:aabb:ccdd::/48
  return forms;
}

function ipv4Text(b: Uint8Array): string {
  return Array.from(b).join(".");
}

/** 4 bytes for IPv4, 16 for IPv6 (a `%zone` is ignored), undefined for anything else. */
function ipBytes(text: string): Uint8Array | undefined {
  const family = isIP(text);
  if (family === 4) return Uint8Array.from(text.split(".").map(Number));
  const bare = text.replace(/%.*$/, "");
  if (isIP(bare) !== 6) return undefined;
  let s = bare;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (tail?.[1] !== undefined) {
    const [a = 0, b = 0, c = 0, d = 0] = tail[1].split(".").map(Number);
    s = `${s.slice(0, -tail[1].length)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", rest] = s.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const restGroups = rest === undefined || rest === "" ? [] : rest.split(":");
  const fill = rest === undefined ? 0 : 8 - headGroups.length - restGroups.length;
  const groups = [...headGroups, ...Array<string>(fill).fill("0"), ...restGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  return bytes;
}
