// The CLI against a server requiring mutual TLS, with certificates made at test time: the
// SLUICE_TLS_* variables reach @sluice/client, and a CLI without its certificate (or without TLS)
// is refused however good its token.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { noopLogger } from "@sluice/domain";
import { GrpcStatus, createServer, createTokenAuthenticator, isRpcError } from "@sluice/grpc";
import type { ServiceImpl, SluiceServer } from "@sluice/grpc";
import { PipelineService } from "@sluice/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestPki } from "@sluice/testkit";
import type { TestPki } from "@sluice/testkit";
import { parseArgs, runCommand, UsageError } from "../src/index.js";
import { resolveConnection, tlsFromEnv } from "../src/connection.js";

const TOKEN = "ops-token-for-the-cli-tls-test-0123456789";

describe("CLI over mutual TLS", () => {
  let pki: TestPki;
  let server: SluiceServer;
  let address: string;
  const cwd = mkdtempSync(join(tmpdir(), "sluice-cli-tls-"));
  let calls = 0;

  beforeAll(async () => {
    pki = makeTestPki();
    const impl = Object.fromEntries(PipelineService.methods.map((m) => [m.localName, () => Promise.reject(new Error(`${m.name} not in this test`))])) as unknown as ServiceImpl<typeof PipelineService>;
    impl.listPipelines = () => {
      calls++;
      return Promise.resolve({ pipelines: [{ name: "web", version: 3 }] });
    };
    server = createServer({
      logger: noopLogger,
      auth: createTokenAuthenticator([{ principal: "ops", roles: ["viewer"], token: TOKEN }]),
      permissions: { ListPipelines: ["viewer"] },
      tls: { cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true },
    });
    server.add(PipelineService, impl);
    address = `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  });

  afterAll(async () => {
    await server.stop(1000);
    pki.remove();
    rmSync(cwd, { recursive: true, force: true });
  });

  const run = (env: Record<string, string>): Promise<unknown> =>
    runCommand(parseArgs(["list-pipelines"]), resolveConnection(parseArgs(["list-pipelines"]), { SLUICE_ADDR: address, SLUICE_TOKEN: TOKEN, ...env }, cwd)).catch((e: unknown) => e);

  it("lists pipelines with SLUICE_TLS_CA, SLUICE_TLS_CERT and SLUICE_TLS_KEY", async () => {
    const out = await run({ SLUICE_TLS_CA: pki.paths.ca, SLUICE_TLS_CERT: pki.paths.clientCert, SLUICE_TLS_KEY: pki.paths.clientKey });
    expect(String(out)).toContain("web");
  });

  it("is refused without a client certificate, with another CA's certificate, or in plaintext", async () => {
    const before = calls;
    for (const env of [
      { SLUICE_TLS_CA: pki.paths.ca },
      { SLUICE_TLS_CA: pki.paths.ca, SLUICE_TLS_CERT: pki.paths.otherClientCert, SLUICE_TLS_KEY: pki.paths.otherClientKey },
      {},
    ]) {
      expect(isRpcError(await run(env), GrpcStatus.UNAVAILABLE)).toBe(true);
    }
    expect(calls).toBe(before);
  });

  it("names a bad TLS variable", () => {
    expect(() => tlsFromEnv({ SLUICE_TLS_CA: join(cwd, "missing.pem") })).toThrow(UsageError);
    expect(() => tlsFromEnv({ SLUICE_TLS_CERT: pki.paths.clientCert })).toThrow(/SLUICE_TLS_CERT and SLUICE_TLS_KEY go together/);
    expect(() => tlsFromEnv({ SLUICE_TLS: "maybe" })).toThrow(/SLUICE_TLS: must be true or false/);
    expect(tlsFromEnv({})).toBeUndefined();
    expect(tlsFromEnv({ SLUICE_TLS: "true" })).toEqual({});
  });
});
