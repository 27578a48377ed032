// Real certificates for TLS tests, made with the machine's openssl in a temp directory: a CA, a
// server certificate for 127.0.0.1/localhost, a client certificate, and a second CA with its own
// client certificate (the attacker's).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM files of one test PKI; `paths` are the same files on disk (for config variables). */
export interface TestPki {
  readonly dir: string;
  readonly ca: Buffer;
  readonly serverCert: Buffer;
  readonly serverKey: Buffer;
  readonly clientCert: Buffer;
  readonly clientKey: Buffer;
  /** A CA nobody trusts, and a client certificate it signed. */
  readonly otherCa: Buffer;
  readonly otherClientCert: Buffer;
  readonly otherClientKey: Buffer;
  /** A server certificate for 127.0.0.1 signed by the other CA (a man in the middle). */
  readonly otherServerCert: Buffer;
  readonly otherServerKey: Buffer;
  readonly paths: Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey" | "otherClientCert" | "otherClientKey", string>;
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string): void {
  openssl(dir, ["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`,
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
}

function makeLeaf(dir: string, ca: string, name: string, ext: string): void {
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(dir, ["req", ...EC, "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
  openssl(dir, ["x509", "-req", "-in", `${name}.csr`, "-CA", `${ca}.crt`, "-CAkey", `${ca}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`]);
}

const SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT = "extendedKeyUsage=clientAuth\n";

/** Generates the PKI; call `remove()` when done. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "sluice-pki-"));
  makeCa(dir, "ca");
  makeLeaf(dir, "ca", "server", SERVER_EXT);
  makeLeaf(dir, "ca", "client", CLIENT_EXT);
  makeCa(dir, "other-ca");
  makeLeaf(dir, "other-ca", "other-client", CLIENT_EXT);
  makeLeaf(dir, "other-ca", "other-server", SERVER_EXT);
  const file = (name: string): Buffer => readFileSync(join(dir, name));
  return {
    dir,
    ca: file("ca.crt"),
    serverCert: file("server.crt"),
    serverKey: file("server.key"),
    clientCert: file("client.crt"),
    clientKey: file("client.key"),
    otherCa: file("other-ca.crt"),
    otherClientCert: file("other-client.crt"),
    otherClientKey: file("other-client.key"),
    otherServerCert: file("other-server.crt"),
    otherServerKey: file("other-server.key"),
    paths: {
      ca: join(dir, "ca.crt"),
      serverCert: join(dir, "server.crt"),
      serverKey: join(dir, "server.key"),
      clientCert: join(dir, "client.crt"),
      clientKey: join(dir, "client.key"),
      otherClientCert: join(dir, "other-client.crt"),
      otherClientKey: join(dir, "other-client.key"),
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
