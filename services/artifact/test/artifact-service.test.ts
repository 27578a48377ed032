import { createHash, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, inject } from "vitest";
import type {} from "@sluice/testkit";
import { GrpcStatus, createClient, isRpcError } from "@sluice/grpc";
import type { Client } from "@sluice/grpc";
import { ArtifactService } from "@sluice/proto";
import { loadArtifactConfig } from "../src/config.js";
import { startArtifactService } from "../src/service.js";
import type { RunningArtifactService } from "../src/service.js";

const servers = inject("servers");
const suffix = randomUUID().slice(0, 8);
const bucket = `sluice-artifact-test-${suffix}`;
const TOKENS = "orchestrator=service:svc-token,runner-1=runner:runner-token,vic=viewer:viewer-token";

let service: RunningArtifactService;
let orchestrator: Client<typeof ArtifactService>;
let runner: Client<typeof ArtifactService>;
let viewer: Client<typeof ArtifactService>;
let anonymous: Client<typeof ArtifactService>;

beforeAll(async () => {
  const config = loadArtifactConfig({
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: `test_artifacts_${suffix}`,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    S3_ENDPOINT: `${servers.s3.useSSL ? "https" : "http"}://${servers.s3.endPoint}:${servers.s3.port}`,
    S3_ACCESS_KEY: servers.s3.accessKey,
    S3_SECRET_KEY: servers.s3.secretKey,
    GRANT_TTL_SECONDS: "300",
  });
  service = await startArtifactService(config);
  const address = `127.0.0.1:${service.port}`;
  orchestrator = createClient(ArtifactService, address, { token: "svc-token" });
  runner = createClient(ArtifactService, address, { token: "runner-token" });
  viewer = createClient(ArtifactService, address, { token: "viewer-token" });
  anonymous = createClient(ArtifactService, address);
});

afterAll(async () => {
  for (const c of [orchestrator, runner, viewer, anonymous]) c?.close();
  await service?.stop(5_000);
});

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** A job's identity: a fresh execution and action execution per call. */
function job(overrides: Record<string, unknown> = {}) {
  return {
    pipelineName: "demo.pipeline",
    pipelineExecutionId: randomUUID(),
    stageName: "Build",
    actionName: "Compile",
    actionExecutionId: randomUUID(),
    bucket,
    inputArtifactIds: [] as string[],
    outputNames: [] as string[],
    ...overrides,
  };
}

async function rpcError(promise: Promise<unknown>) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isRpcError(err)) throw new Error(`expected an rpc error, got ${String(err)}`);
  return err;
}

/** Issues an output grant, uploads `bytes` to it and commits; returns the artifact id. */
async function storeOutput(bytes: Uint8Array, name = "BuildOut"): Promise<{ artifactId: string; request: ReturnType<typeof job> }> {
  const request = job({ outputNames: [name] });
  const grants = await orchestrator.issueJobGrants(request);
  const out = grants.outputs[0];
  if (out?.grant === undefined) throw new Error("no output grant");
  const put = await fetch(out.grant.url, { method: "PUT", body: bytes });
  expect(put.status).toBe(200);
  await runner.commitArtifact({ artifactId: out.artifactId, sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
  return { artifactId: out.artifactId, request };
}

describe("ArtifactService", () => {
  it("issues a log grant for a job's attempt, registered as the artifact <actionExecutionId>/log.<attempt> and read back with a download grant", async () => {
    const request = job({ logAttempt: 2 });
    const grants = await orchestrator.issueJobGrants(request);
    expect(grants.log?.name).toBe("log.2");
    expect(grants.log?.artifactId).toBe(`${request.actionExecutionId}/log.2`);
    expect(grants.log?.grant?.method).toBe("PUT");
    expect(grants.log?.grant?.key).toBe(`demo.pipeline/${request.pipelineExecutionId}/${request.actionExecutionId}/logs/2.jsonl`);
    const bytes = new TextEncoder().encode('{"sequence":"1","stream":"stdout","text":"hi"}\n');
    const put = await fetch(grants.log?.grant?.url ?? "", { method: "PUT", body: bytes });
    expect(put.status).toBe(200);
    await runner.commitArtifact({ artifactId: grants.log?.artifactId ?? "", sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
    const download = await viewer.createDownloadGrant({ artifactId: grants.log?.artifactId ?? "" });
    const got = await fetch(download.grant?.url ?? "");
    expect(await got.text()).toContain('"text":"hi"');
    // Without logAttempt no log grant; a negative one is refused naming the field.
    expect((await orchestrator.issueJobGrants(job())).log).toBeUndefined();
    const err = await rpcError(orchestrator.issueJobGrants(job({ logAttempt: -1 })));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.message).toContain("logAttempt");
  });

  it("issues a PUT grant for an output, commits it as STORED, and serves it to a later job through a GET grant", async () => {
    const bytes = new TextEncoder().encode(`zip bytes ${randomUUID()}`);
    const request = job({ outputNames: ["BuildOut"] });
    const grants = await orchestrator.issueJobGrants(request);
    expect(grants.inputs).toEqual([]);
    const out = grants.outputs[0];
    expect(out?.name).toBe("BuildOut");
    expect(out?.artifactId).toBe(`${request.actionExecutionId}/BuildOut`);
    expect(out?.grant?.method).toBe("PUT");
    expect(out?.grant?.bucket).toBe(bucket);
    expect(out?.grant?.key).toBe(`demo.pipeline/${request.pipelineExecutionId}/${request.actionExecutionId}/BuildOut.zip`);
    const expiresAt = Number(out?.grant?.expiresAt?.seconds ?? 0n) * 1000;
    expect(expiresAt).toBeGreaterThan(Date.now() + 250_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 301_000);

    const pending = await viewer.getArtifact({ artifactId: out?.artifactId ?? "" });
    expect(pending.artifact?.status).toBe("PENDING");

    const put = await fetch(out?.grant?.url ?? "", { method: "PUT", body: bytes });
    expect(put.status).toBe(200);
    const committed = await runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
    expect(committed.artifact).toMatchObject({ status: "STORED", sha256: sha256(bytes), sizeBytes: BigInt(bytes.length), stageName: "Build", actionName: "Compile" });

    // Committing the same content again is idempotent.
    const again = await runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(bytes).toUpperCase(), sizeBytes: BigInt(bytes.length) });
    expect(again.artifact?.status).toBe("STORED");

    const deploy = await orchestrator.issueJobGrants(
      job({ pipelineExecutionId: request.pipelineExecutionId, stageName: "Deploy", actionName: "Ship", inputArtifactIds: [out?.artifactId ?? ""] }),
    );
    const input = deploy.inputs[0];
    expect(input).toMatchObject({ name: "BuildOut", artifactId: out?.artifactId, sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
    expect(input?.grant?.method).toBe("GET");
    const get = await fetch(input?.grant?.url ?? "");
    expect(get.status).toBe(200);
    const body = new Uint8Array(await get.arrayBuffer());
    expect(sha256(body)).toBe(sha256(bytes));

    const listed = await viewer.listArtifacts({ pipelineName: "demo.pipeline", pipelineExecutionId: request.pipelineExecutionId });
    expect(listed.artifacts.map((a) => a.artifactId)).toEqual([out?.artifactId]);

    const download = await viewer.createDownloadGrant({ artifactId: out?.artifactId ?? "" });
    expect(download.sha256).toBe(sha256(bytes));
    const fetched = await fetch(download.grant?.url ?? "");
    expect(sha256(new Uint8Array(await fetched.arrayBuffer()))).toBe(sha256(bytes));
  });

  it("refuses a commit whose size differs from the uploaded object (DATA_LOSS) and one with nothing uploaded", async () => {
    const bytes = new TextEncoder().encode("twelve bytes");
    const grants = await orchestrator.issueJobGrants(job({ outputNames: ["Out", "Missing"] }));
    const [out, missing] = grants.outputs;
    await fetch(out?.grant?.url ?? "", { method: "PUT", body: bytes });

    const wrongSize = await rpcError(runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(bytes), sizeBytes: 13n }));
    expect(wrongSize.code).toBe(GrpcStatus.DATA_LOSS);
    expect(wrongSize.errorCode).toBe("ArtifactIntegrityException");
    expect(wrongSize.violations).toEqual([{ field: "sizeBytes", message: "is 13 but the stored object has 12 bytes" }]);
    expect((await viewer.getArtifact({ artifactId: out?.artifactId ?? "" })).artifact?.status).toBe("PENDING");

    const notUploaded = await rpcError(runner.commitArtifact({ artifactId: missing?.artifactId ?? "", sha256: sha256(bytes), sizeBytes: 12n }));
    expect(notUploaded.code).toBe(GrpcStatus.DATA_LOSS);
    expect(notUploaded.violations[0]?.field).toBe("artifactId");
  });

  it("refuses to commit different content over a STORED artifact and does not reset it when grants are re-issued", async () => {
    const bytes = new TextEncoder().encode("first content");
    const { artifactId, request } = await storeOutput(bytes);
    const conflict = await rpcError(runner.commitArtifact({ artifactId, sha256: "0".repeat(64), sizeBytes: BigInt(bytes.length) }));
    expect(conflict.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(conflict.violations[0]?.field).toBe("sha256");

    const reissued = await orchestrator.issueJobGrants(request);
    expect(reissued.outputs[0]?.artifactId).toBe(artifactId);
    expect(reissued.outputs[0]?.grant?.method).toBe("PUT");
    const after = await viewer.getArtifact({ artifactId });
    expect(after.artifact).toMatchObject({ status: "STORED", sha256: sha256(bytes) });
  });

  it("scopes a grant to one key and one method: another key or GET is refused by the object store", async () => {
    const grants = await orchestrator.issueJobGrants(job({ outputNames: ["Scoped"] }));
    const url = new URL(grants.outputs[0]?.grant?.url ?? "");
    const otherKey = new URL(url);
    otherKey.pathname = url.pathname.replace(/Scoped\.zip$/, "Other.zip");
    expect(otherKey.pathname).not.toBe(url.pathname);
    const forged = await fetch(otherKey, { method: "PUT", body: "x" });
    expect(forged.status).toBe(403);
    expect(await forged.text()).toContain("SignatureDoesNotMatch");
    const asGet = await fetch(url, { method: "GET" });
    expect(asGet.status).toBe(403);
    expect(await asGet.text()).toContain("SignatureDoesNotMatch");
  });

  it("answers NOT_FOUND for an unknown or uncommitted input, naming the field", async () => {
    const unknown = `${randomUUID()}/Nope`;
    const err = await rpcError(orchestrator.issueJobGrants(job({ inputArtifactIds: [unknown], outputNames: ["Out"] })));
    expect(err.code).toBe(GrpcStatus.NOT_FOUND);
    expect(err.errorCode).toBe("ArtifactNotFoundException");
    expect(err.violations[0]?.field).toBe("inputArtifactIds[0]");

    const pending = await orchestrator.issueJobGrants(job({ outputNames: ["NotYet"] }));
    const pendingId = pending.outputs[0]?.artifactId ?? "";
    const notStored = await rpcError(orchestrator.issueJobGrants(job({ inputArtifactIds: [pendingId] })));
    expect(notStored.code).toBe(GrpcStatus.NOT_FOUND);
    expect(notStored.violations[0]?.field).toBe("inputArtifactIds[0]");
    const download = await rpcError(viewer.createDownloadGrant({ artifactId: pendingId }));
    expect(download.code).toBe(GrpcStatus.NOT_FOUND);
    expect((await rpcError(viewer.getArtifact({ artifactId: unknown }))).code).toBe(GrpcStatus.NOT_FOUND);
  });

  it("rejects bad fields with INVALID_ARGUMENT naming each one", async () => {
    const err = await rpcError(
      orchestrator.issueJobGrants(
        job({ bucket: "Bad_Bucket", pipelineExecutionId: "not-a-uuid", outputNames: ["ok", "bad name", "ok"], inputArtifactIds: ["no-slash"] }),
      ),
    );
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.errorCode).toBe("ValidationException");
    expect(err.violations.map((v) => v.field).sort()).toEqual(["bucket", "inputArtifactIds[0]", "outputNames[1]", "outputNames[2]", "pipelineExecutionId"]);

    const commit = await rpcError(runner.commitArtifact({ artifactId: `${randomUUID()}/Out`, sha256: "abc", sizeBytes: -1n }));
    expect(commit.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(commit.violations.map((v) => v.field).sort()).toEqual(["sha256", "sizeBytes"]);
  });

  it("renews the PUT grant of a PENDING output for the runner, and refuses STORED, unknown and bad requests", async () => {
    const request = job({ outputNames: ["Late", "Done"] });
    const issued = await orchestrator.issueJobGrants(request);
    const done = issued.outputs[1];
    const doneBytes = new TextEncoder().encode("done already");
    await fetch(done?.grant?.url ?? "", { method: "PUT", body: doneBytes });
    await runner.commitArtifact({ artifactId: done?.artifactId ?? "", sha256: sha256(doneBytes), sizeBytes: BigInt(doneBytes.length) });

    // The service role may renew as well as the runner.
    const byService = await orchestrator.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: ["Late"] });
    expect(byService.outputs[0]?.grant?.method).toBe("PUT");
    const renewed = await runner.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: ["Late"] });
    expect(renewed.outputs).toHaveLength(1);
    const out = renewed.outputs[0];
    expect(out).toMatchObject({ name: "Late", artifactId: `${request.actionExecutionId}/Late` });
    expect(out?.grant).toMatchObject({ method: "PUT", bucket, key: issued.outputs[0]?.grant?.key });
    expect(Number(out?.grant?.expiresAt?.seconds ?? 0n) * 1000).toBeGreaterThan(Date.now() + 250_000);
    const bytes = new TextEncoder().encode(`late bytes ${randomUUID()}`);
    const put = await fetch(out?.grant?.url ?? "", { method: "PUT", body: bytes });
    expect(put.status).toBe(200);
    const committed = await runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(bytes), sizeBytes: BigInt(bytes.length) });
    expect(committed.artifact?.status).toBe("STORED");
    // Once committed, the output is not renewable any more.
    const afterCommit = await rpcError(orchestrator.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: ["Late"] }));
    expect(afterCommit.code).toBe(GrpcStatus.FAILED_PRECONDITION);

    const stored = await rpcError(runner.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: ["Done"] }));
    expect(stored.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(stored.errorCode).toBe("ConflictException");
    expect(stored.violations[0]?.field).toBe("outputNames[0]");

    const unknown = await rpcError(runner.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: ["Nope"] }));
    expect(unknown.code).toBe(GrpcStatus.NOT_FOUND);
    expect(unknown.errorCode).toBe("ArtifactNotFoundException");
    expect(unknown.violations[0]?.field).toBe("outputNames[0]");
    const otherExecution = await rpcError(runner.renewOutputGrants({ actionExecutionId: randomUUID(), outputNames: ["Late"] }));
    expect(otherExecution.code).toBe(GrpcStatus.NOT_FOUND);

    const bad = await rpcError(runner.renewOutputGrants({ actionExecutionId: "", outputNames: ["ok", "bad name", "ok"] }));
    expect(bad.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bad.violations.map((v) => v.field).sort()).toEqual(["actionExecutionId", "outputNames[1]", "outputNames[2]"]);
    const empty = await rpcError(runner.renewOutputGrants({ actionExecutionId: request.actionExecutionId, outputNames: [] }));
    expect(empty.violations.map((v) => v.field)).toEqual(["outputNames"]);

    const pending = await orchestrator.issueJobGrants(job({ outputNames: ["Out"] }));
    const viewerRenews = await rpcError(viewer.renewOutputGrants({ actionExecutionId: pending.outputs[0]?.artifactId.split("/")[0] ?? "", outputNames: ["Out"] }));
    expect(viewerRenews.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it("requires a token and the right role", async () => {
    const none = await rpcError(anonymous.getArtifact({ artifactId: `${randomUUID()}/Out` }));
    expect(none.code).toBe(GrpcStatus.UNAUTHENTICATED);
    const viewerIssues = await rpcError(viewer.issueJobGrants(job({ outputNames: ["Out"] })));
    expect(viewerIssues.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const runnerIssues = await rpcError(runner.issueJobGrants(job({ outputNames: ["Out"] })));
    expect(runnerIssues.code).toBe(GrpcStatus.PERMISSION_DENIED);
    const viewerCommits = await rpcError(viewer.commitArtifact({ artifactId: `${randomUUID()}/Out`, sha256: "a".repeat(64), sizeBytes: 1n }));
    expect(viewerCommits.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });
});
