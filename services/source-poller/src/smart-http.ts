// The refs a Git server advertises over smart HTTP (`GET <repo>/info/refs?service=git-upload-pack`),
// read without starting git: polling many sources would otherwise fork a git process (and its
// remote helper) per poll, which dominates the poller's CPU.

/** Settings of the git environment that change how git reaches a server; with any of them set, git does it. */
const GIT_NETWORK_SETTINGS = /^(https?_proxy|all_proxy|no_proxy|GIT_SSL_.*|GIT_CURL_.*|SSL_CERT_(FILE|DIR)|CURL_CA_BUNDLE|GIT_CONFIG.*)$/i;

/** Whether refs of `url` may be read natively: an http(s) URL, and nothing in the environment git would apply. */
export function readsNatively(url: string, hostEnv: Readonly<Record<string, string>>): boolean {
  if (!/^https?:\/\//i.test(url)) return false;
  return !Object.keys(hostEnv).some((k) => GIT_NETWORK_SETTINGS.test(k));
}

/** Why native reading gave up; the caller then asks git, which knows more ways (dumb HTTP, auth helpers). */
export class NotSmartHttp extends Error {}

/**
 * The advertised refs as `git ls-remote` prints them (`<sha>\t<ref>` lines, peeled tags as
 * `<ref>^{}`). Credentials in the URL go as Basic authentication, never in the request line.
 * Throws NotSmartHttp for a server that is not a smart-HTTP Git server (or wants more than
 * Basic credentials), and a plain Error naming the status for a failure git would fail on too.
 */
export async function smartHttpRefs(url: string, timeoutMs: number): Promise<string> {
  const target = new URL(url.replace(/\/+$/, "") + "/info/refs");
  target.searchParams.set("service", "git-upload-pack");
  const headers: Record<string, string> = { "user-agent": "git/sluice-source-poller", accept: "application/x-git-upload-pack-advertisement" };
  if (target.username !== "" || target.password !== "") {
    headers["authorization"] = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString("base64")}`;
    target.username = "";
    target.password = "";
  }
  let res: Response;
  try {
    res = await fetch(target, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
  } catch (err) {
    const e = err as { name?: string; message?: string; cause?: { message?: string } };
    if (e.name === "TimeoutError") throw new Error(`git ls-remote timed out after ${timeoutMs} ms`);
    throw new Error(`git ls-remote: cannot reach ${target.origin}: ${e.cause?.message ?? e.message ?? String(err)}`);
  }
  if (res.status === 401 || res.status === 403) throw new NotSmartHttp(`the server answered ${res.status}`);
  if (!res.ok) throw new Error(`git ls-remote: the server answered ${res.status} for ${target.origin}${target.pathname}`);
  if (res.headers.get("content-type") !== "application/x-git-upload-pack-advertisement") {
    await res.body?.cancel();
    throw new NotSmartHttp("not a smart-HTTP Git server");
  }
  return advertisementToLsRemote(Buffer.from(await res.arrayBuffer()));
}

/** Parses a protocol-v0 ref advertisement (pkt-lines) into `git ls-remote` output. */
export function advertisementToLsRemote(body: Buffer): string {
  const lines: string[] = [];
  let at = 0;
  while (at + 4 <= body.length) {
    const length = parseInt(body.toString("ascii", at, at + 4), 16);
    if (Number.isNaN(length)) throw new NotSmartHttp("malformed pkt-line");
    if (length === 0) {
      at += 4; // flush
      continue;
    }
    if (length < 4 || at + length > body.length) throw new NotSmartHttp("malformed pkt-line");
    let line = body.toString("utf8", at + 4, at + length);
    at += length;
    if (line.startsWith("# service=")) continue;
    const nul = line.indexOf("\0");
    if (nul >= 0) line = line.slice(0, nul); // capabilities after the first ref
    line = line.replace(/\n$/, "");
    const space = line.indexOf(" ");
    if (space <= 0) continue;
    const ref = line.slice(space + 1);
    if (ref === "capabilities^{}") continue; // an empty repository
    lines.push(`${line.slice(0, space)}\t${ref}`);
  }
  return lines.join("\n");
}
