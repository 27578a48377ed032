// Attacks on the artifact service's trust boundaries, against real MinIO and FerretDB: a runner
// that lies about what it uploaded, a job that names another pipeline's artifact, and a runner
// token used to write deploy buckets outside the deploy job it was handed.
import { createHash, randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Client as MinioClient } from "minio";
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
const bucket = `sluice-trust-artifacts-${suffix}`;
const site = `sluice-trust-site-${suffix}`;
const otherSite = `sluice-trust-other-${suffix}`;
const TOKENS = "orchestrator=service:svc-token,runner-1=runner:runner-token,vic=viewer:viewer-token";
const minio = new MinioClient({ ...servers.s3, region: "us-east-1" });

let service: RunningArtifactService;
let orchestrator: Client<typeof ArtifactService>;
let runner: Client<typeof ArtifactService>;
let viewer: Client<typeof ArtifactService>;
/** Added to the service's clock, to run past a deploy job's deadline. */
let clockOffsetMs = 0;

beforeAll(async () => {
  const config = loadArtifactConfig({
    MONGO_URL: servers.mongoUrl,
    MONGO_DB: `test_artifact_trust_${suffix}`,
    SLUICE_AUTH_TOKENS: TOKENS,
    SLUICE_DEV_MODE: "true",
    S3_ENDPOINT: servers.s3.url,
    S3_ACCESS_KEY: servers.s3.accessKey,
    S3_SECRET_KEY: servers.s3.secretKey,
    GRANT_TTL_SECONDS: "300",
    // Pipeline "web" may deploy to `site`; every pipeline to the per-test "sluice-trust-other-" prefix.
    DEPLOY_BUCKETS: `web=${site},*=sluice-trust-other-*`,
  });
  service = await startArtifactService(config, { now: () => new Date(Date.now() + clockOffsetMs) });
  const address = `127.0.0.1:${service.port}`;
  orchestrator = createClient(ArtifactService, address, { token: "svc-token" });
  runner = createClient(ArtifactService, address, { token: "runner-token" });
  viewer = createClient(ArtifactService, address, { token: "viewer-token" });
});

afterAll(async () => {
  for (const c of [orchestrator, runner, viewer]) c?.close();
  await service?.stop(5_000);
});

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

function job(overrides: Record<string, unknown> = {}) {
  return {
    pipelineName: "web",
    pipelineExecutionId: randomUUID(),
    stageName: "Deploy",
    actionName: "Ship",
    actionExecutionId: randomUUID(),
    bucket,
    inputArtifactIds: [] as string[],
    outputNames: [] as string[],
    ...overrides,
  };
}

function deployTarget(objectKey: string, opts: { bucket?: string; extract?: boolean; inMs?: number } = {}) {
  return {
    bucket: opts.bucket ?? site,
    objectKey,
    extract: opts.extract ?? true,
    expiresAt: timestampFromDate(new Date(Date.now() + (opts.inMs ?? 600_000))),
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

async function storeOutput(pipelineName: string, bytes: string): Promise<string> {
  const grants = await orchestrator.issueJobGrants(job({ pipelineName, outputNames: ["Out"] }));
  const out = grants.outputs[0];
  if (out?.grant === undefined) throw new Error("no output grant");
  expect((await fetch(out.grant.url, { method: "PUT", body: bytes })).status).toBe(200);
  await runner.commitArtifact({ artifactId: out.artifactId, sha256: sha256(bytes), sizeBytes: BigInt(Buffer.byteLength(bytes)) });
  return out.artifactId;
}

describe("CommitArtifact checks the SHA-256 itself", () => {
  it("refuses a runner that uploads bytes X and claims the SHA-256 of Y (same size)", async () => {
    const grants = await orchestrator.issueJobGrants(job({ outputNames: ["Out"] }));
    const out = grants.outputs[0];
    const uploaded = "malicious bytes!";
    const claimed = "innocent bytes!!";
    expect(uploaded.length).toBe(claimed.length);
    await fetch(out?.grant?.url ?? "", { method: "PUT", body: uploaded });

    const forged = await rpcError(runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(claimed), sizeBytes: BigInt(uploaded.length) }));
    expect(forged.code).toBe(GrpcStatus.DATA_LOSS);
    expect(forged.errorCode).toBe("ArtifactIntegrityException");
    expect(forged.violations).toEqual([{ field: "sha256", message: `is ${sha256(claimed)} but the stored object hashes to ${sha256(uploaded)}` }]);
    expect((await viewer.getArtifact({ artifactId: out?.artifactId ?? "" })).artifact?.status).toBe("PENDING");

    // The truth is accepted and recorded.
    const honest = await runner.commitArtifact({ artifactId: out?.artifactId ?? "", sha256: sha256(uploaded), sizeBytes: BigInt(uploaded.length) });
    expect(honest.artifact).toMatchObject({ status: "STORED", sha256: sha256(uploaded) });
  });
});

describe("IssueJobGrants binds grants to the job's own pipeline", () => {
  it("refuses an input artifact of another pipeline's execution, registering no output", async () => {
    const foreign = await storeOutput("payroll", "payroll secrets");
    const request = job({ pipelineName: "web", inputArtifactIds: [foreign], outputNames: ["Stolen"] });
    const err = await rpcError(orchestrator.issueJobGrants(request));
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(err.errorCode).toBe("AccessDeniedException");
    expect(err.violations).toEqual([{ field: "inputArtifactIds[0]", message: `artifact "${foreign}" is not an artifact of pipeline "web"` }]);
    const none = await rpcError(viewer.getArtifact({ artifactId: `${request.actionExecutionId}/Stolen` }));
    expect(none.code).toBe(GrpcStatus.NOT_FOUND);

    // Its own pipeline still reads it.
    const own = await orchestrator.issueJobGrants(job({ pipelineName: "payroll", inputArtifactIds: [foreign] }));
    expect(own.inputs[0]?.artifactId).toBe(foreign);
  });

  it("refuses output grants for an artifact id already issued to another pipeline's job", async () => {
    const first = job({ pipelineName: "payroll", outputNames: ["Out"] });
    await orchestrator.issueJobGrants(first);
    const err = await rpcError(orchestrator.issueJobGrants(job({ pipelineName: "web", actionExecutionId: first.actionExecutionId, outputNames: ["Out"] })));
    expect(err.code).toBe(GrpcStatus.PERMISSION_DENIED);
    expect(err.violations[0]?.field).toBe("actionExecutionId");
  });
});

describe("deploy targets at IssueJobGrants", () => {
  it("refuses a bucket DEPLOY_BUCKETS does not allow for the pipeline, naming BucketName and how to allow it", async () => {
    const err = await rpcError(orchestrator.issueJobGrants(job({ pipelineName: "blog", deploy: deployTarget("site", { bucket: site }) })));
    expect(err.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(err.violations).toEqual([
      {
        field: "configuration.BucketName",
        message: `pipeline "blog" may not deploy to bucket "${site}": allow it in the artifact service's DEPLOY_BUCKETS (e.g. blog=${site})`,
      },
    ]);
  });

  it("refuses the artifact store itself, bad bucket names, `..` and leading `/` in ObjectKey", async () => {
    const cases: [ReturnType<typeof deployTarget>, string, RegExp][] = [
      [deployTarget("site", { bucket }), "configuration.BucketName", /artifact store/],
      [deployTarget("site", { bucket: "Not_A_Bucket" }), "configuration.BucketName", /not an S3 bucket name/],
      [deployTarget("../x"), "configuration.ObjectKey", /".." segment/],
      [deployTarget("site/../../x", { extract: false }), "configuration.ObjectKey", /".." segment/],
      [deployTarget("/site"), "configuration.ObjectKey", /must not start with "\/"/],
      [deployTarget("site\u0000x"), "configuration.ObjectKey", /control characters/],
      [deployTarget("site", { inMs: -1000 }), "deploy.expiresAt", /in the future/],
    ];
    for (const [deploy, field, message] of cases) {
      const err = await rpcError(orchestrator.issueJobGrants(job({ deploy })));
      expect(err.code, field).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(err.violations.map((v) => v.field)).toEqual([field]);
      expect(err.violations[0]?.message).toMatch(message);
    }
  });
});

describe("IssueDeployGrants", () => {
  it("signs PUTs under the deploy job's prefix in its bucket, which MinIO accepts", async () => {
    const request = job({ deploy: deployTarget("site/v1/") });
    await orchestrator.issueJobGrants(request);
    const keys = ["site/v1/index.html", "site/v1/css/a.css"];
    const { grants } = await runner.issueDeployGrants({ actionExecutionId: request.actionExecutionId, bucket: site, keys });
    expect(grants.map((g) => [g.method, g.bucket, g.key])).toEqual(keys.map((k) => ["PUT", site, k]));
    for (const g of grants) expect((await fetch(g.url, { method: "PUT", body: `body of ${g.key}` })).status).toBe(200);
    const stat = await minio.statObject(site, "site/v1/index.html");
    expect(stat.size).toBe("body of site/v1/index.html".length);
  });

  it("gives a runner token nothing for another action execution, another bucket or keys outside the target", async () => {
    const deployJob = job({ deploy: deployTarget("site") });
    await orchestrator.issueJobGrants(deployJob);
    const commandsJob = job({ outputNames: ["Out"] });
    await orchestrator.issueJobGrants(commandsJob);

    const attempts: [Record<string, unknown>, string, RegExp][] = [
      // A job that is not an ObjectStore deploy (it got ordinary grants only) …
      [{ actionExecutionId: commandsJob.actionExecutionId, bucket: site, keys: ["site/x"] }, "actionExecutionId", /not an ObjectStore deploy job/],
      // … an action execution nobody published …
      [{ actionExecutionId: randomUUID(), bucket: site, keys: ["site/x"] }, "actionExecutionId", /not an ObjectStore deploy job/],
      // … the right job, but another bucket (even one allowed for the pipeline by a rule) or the artifact store …
      [{ actionExecutionId: deployJob.actionExecutionId, bucket: otherSite, keys: ["site/x"] }, "bucket", new RegExp(`only, not "${otherSite}"`)],
      [{ actionExecutionId: deployJob.actionExecutionId, bucket, keys: ["site/x"] }, "bucket", /only/],
      // … or keys outside its prefix (a sibling prefix is not inside it).
      [{ actionExecutionId: deployJob.actionExecutionId, bucket: site, keys: ["site/ok", "other/x"] }, "keys[1]", /outside this deploy's target/],
      [{ actionExecutionId: deployJob.actionExecutionId, bucket: site, keys: ["site-evil/x"] }, "keys[0]", /outside this deploy's target/],
    ];
    for (const [req, field, message] of attempts) {
      const err = await rpcError(runner.issueDeployGrants(req));
      expect(err.code, JSON.stringify(req)).toBe(GrpcStatus.PERMISSION_DENIED);
      expect(err.errorCode).toBe("AccessDeniedException");
      expect(err.violations[0]?.field).toBe(field);
      expect(err.violations[0]?.message).toMatch(message);
    }

    const traversal = await rpcError(runner.issueDeployGrants({ actionExecutionId: deployJob.actionExecutionId, bucket: site, keys: ["site/../payroll/x", "/site/x"] }));
    expect(traversal.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(traversal.violations.map((v) => v.field)).toEqual(["keys[0]", "keys[1]"]);

    const viewerAsks = await rpcError(viewer.issueDeployGrants({ actionExecutionId: deployJob.actionExecutionId, bucket: site, keys: ["site/x"] }));
    expect(viewerAsks.code).toBe(GrpcStatus.PERMISSION_DENIED);
  });

  it("signs only the one key when Extract is false, and nothing after the job's deadline", async () => {
    const request = job({ deploy: deployTarget("releases/app.zip", { extract: false, inMs: 60_000 }) });
    await orchestrator.issueJobGrants(request);
    const ok = await runner.issueDeployGrants({ actionExecutionId: request.actionExecutionId, bucket: site, keys: ["releases/app.zip"] });
    expect(ok.grants).toHaveLength(1);
    const under = await rpcError(runner.issueDeployGrants({ actionExecutionId: request.actionExecutionId, bucket: site, keys: ["releases/app.zip/x"] }));
    expect(under.code).toBe(GrpcStatus.PERMISSION_DENIED);

    clockOffsetMs = 120_000;
    try {
      const late = await rpcError(runner.issueDeployGrants({ actionExecutionId: request.actionExecutionId, bucket: site, keys: ["releases/app.zip"] }));
      expect(late.code).toBe(GrpcStatus.PERMISSION_DENIED);
      expect(late.message).toMatch(/expired at its job's deadline/);
    } finally {
      clockOffsetMs = 0;
    }
  });
});
