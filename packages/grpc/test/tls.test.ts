// TLS and mutual TLS with real certificates made at test time. Each refusal test plays the attacker:
// a plaintext client sniffing for a token-only server, a client without a certificate or with one
// from its own CA, and a server impersonating the real one with a certificate from another CA.
import { status } from "@grpc/grpc-js";
import { ApprovalService } from "@sluice/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTokenAuthenticator } from "../src/auth.js";
import { createClient, isRpcError } from "../src/client.js";
import type { ClientTlsOptions } from "../src/client.js";
import { createServer } from "../src/server.js";
import type { ServerTlsOptions, ServiceImpl, SluiceServer } from "../src/server.js";
import { makeTestPki } from "@sluice/testkit";
import type { TestPki } from "@sluice/testkit";
import { recordingLogger } from "./fixtures.js";

const TOKEN = "viewer-token-for-the-tls-tests-0123456789";

describe("gRPC over TLS", () => {
  let pki: TestPki;
  const calls = { count: 0 };
  const servers: SluiceServer[] = [];
  const logger = recordingLogger();

  const impl: ServiceImpl<typeof ApprovalService> = {
    listApprovals: () => Promise.resolve({}),
    putApprovalResult: () => Promise.resolve({}),
    getApproval(req) {
      calls.count++;
      return Promise.resolve({ approval: { token: req.token, status: "Pending" } });
    },
  };

  async function serve(tls: ServerTlsOptions | undefined): Promise<string> {
    const server = createServer({ logger, auth: createTokenAuthenticator([{ principal: "val", roles: ["viewer"], token: TOKEN }]), permissions: { GetApproval: ["viewer"] }, tls });
    server.add(ApprovalService, impl);
    servers.push(server);
    return `127.0.0.1:${await server.listen("127.0.0.1", 0)}`;
  }

  /** One GetApproval call; resolves with the token echoed, or the error. */
  async function call(address: string, tls: ClientTlsOptions | undefined): Promise<unknown> {
    const client = createClient(ApprovalService, address, { token: TOKEN, deadlineMs: 10_000, tls });
    try {
      return (await client.getApproval({ token: "t-1" })).approval?.token;
    } catch (err) {
      return err;
    } finally {
      client.close();
    }
  }

  let tlsAddress: string;
  let mtlsAddress: string;
  let impostorAddress: string;

  beforeAll(async () => {
    pki = makeTestPki();
    tlsAddress = await serve({ cert: pki.serverCert, key: pki.serverKey });
    mtlsAddress = await serve({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requireClientCert: true });
    impostorAddress = await serve({ cert: pki.otherServerCert, key: pki.otherServerKey });
  });

  afterAll(async () => {
    for (const s of servers) await s.stop(1000);
    pki.remove();
  });

  it("serves a client that verifies the server against the CA", async () => {
    expect(await call(tlsAddress, { ca: pki.ca })).toBe("t-1");
    expect(logger.lines.some((l) => l.msg === "grpc server listening" && l.fields["tls"] === "server")).toBe(true);
  });

  it("refuses a plaintext client: no call reaches the handler, the token is never read", async () => {
    const before = calls.count;
    const err = await call(tlsAddress, undefined);
    expect(isRpcError(err, status.UNAVAILABLE)).toBe(true);
    expect(calls.count).toBe(before);
  });

  it("a client refuses a server whose certificate another CA signed (man in the middle)", async () => {
    const before = calls.count;
    const err = await call(impostorAddress, { ca: pki.ca });
    expect(isRpcError(err, status.UNAVAILABLE)).toBe(true);
    // The impostor never saw the request, so never saw the bearer token.
    expect(calls.count).toBe(before);
  });

  it("with mutual TLS serves a client presenting a certificate signed by the CA", async () => {
    expect(await call(mtlsAddress, { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey })).toBe("t-1");
  });

  it("with mutual TLS refuses a client without a certificate, even with a valid token", async () => {
    const before = calls.count;
    const err = await call(mtlsAddress, { ca: pki.ca });
    expect(isRpcError(err, status.UNAVAILABLE)).toBe(true);
    expect(calls.count).toBe(before);
  });

  it("with mutual TLS refuses a client whose certificate its own CA signed", async () => {
    const before = calls.count;
    const err = await call(mtlsAddress, { ca: pki.ca, cert: pki.otherClientCert, key: pki.otherClientKey });
    expect(isRpcError(err, status.UNAVAILABLE)).toBe(true);
    expect(calls.count).toBe(before);
  });

  it("refuses to build a mutual-TLS server without a CA, and a client certificate without its key", () => {
    expect(() => createServer({ logger, auth: createTokenAuthenticator([]), permissions: {}, tls: { cert: pki.serverCert, key: pki.serverKey, requireClientCert: true } })).toThrow(/needs tls.ca/);
    expect(() => createClient(ApprovalService, tlsAddress, { tls: { ca: pki.ca, cert: pki.clientCert } })).toThrow(/tls.cert and tls.key go together/);
  });

  it("warns when a plaintext server listens beyond loopback", async () => {
    const server = createServer({ logger, auth: createTokenAuthenticator([]), permissions: {} });
    server.add(ApprovalService, impl);
    servers.push(server);
    // 0.0.0.0 binds every interface; nothing connects to it here.
    await server.listen("0.0.0.0", 0);
    expect(logger.lines.some((l) => l.level === "warn" && /without TLS/.test(l.msg) && l.fields["host"] === "0.0.0.0")).toBe(true);
  });
});
