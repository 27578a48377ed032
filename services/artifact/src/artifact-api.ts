import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { bucketNameProblem, objectKeyProblem, trimPrefix } from "@sluice/artifacts";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DomainError, MAX_ARTIFACTS_PER_JOB, logArtifactIdOf, logArtifactName } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import type { ArtifactSchema, DeployTarget, GrantSchema, SourceObject } from "@sluice/proto";
import type { ArtifactService } from "@sluice/proto";
import type { PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ArtifactDoc, ArtifactStore } from "./artifact-store.js";
import type { DeployAllowance, DeployAllowanceStore } from "./deploy-allowances.js";
import type { DeployBuckets } from "./deploy-buckets.js";
import type { ObjectStore, PresignedGrant } from "./object-store.js";
import { Violations, artifactIdOf, artifactKeyOf, logKeyOf } from "./validation.js";

/**
 * Who may call what. Runners only commit what they uploaded and read metadata;
 * grants for a job are issued to the orchestrator (role service), which
 * attaches them to the job. `admin` passes every check.
 */
export const ARTIFACT_PERMISSIONS: PermissionTable = {
  IssueJobGrants: ["service"],
  CommitArtifact: ["runner", "service"],
  GetArtifact: ["viewer", "runner", "service"],
  ListArtifacts: ["viewer", "runner", "service"],
  CreateDownloadGrant: ["viewer", "runner", "service"],
  // A running job's own runner renews the upload grants it was handed.
  RenewOutputGrants: ["runner", "service"],
  // Only inside the allowance the orchestrator recorded for the deploy job.
  IssueDeployGrants: ["runner", "service"],
};

/** Most keys one IssueDeployGrants call may ask for; the runner asks in batches. */
export const MAX_DEPLOY_KEYS_PER_CALL = 1000;

/** What the handlers need. */
export interface ArtifactApiDeps {
  store: ArtifactStore;
  allowances: DeployAllowanceStore;
  /** Which pipelines may deploy to which buckets (DEPLOY_BUCKETS). */
  deployBuckets: DeployBuckets;
  /** Which pipelines may read which buckets through ObjectStore sources (SOURCE_BUCKETS); none when absent. */
  sourceBuckets?: DeployBuckets;
  objects: ObjectStore;
  /** Lifetime of every presigned URL, ≤ 7 days. */
  grantTtlSeconds: number;
  logger: Logger;
  now: () => Date;
}

/** The gRPC `ArtifactService` implementation. */
export function createArtifactApi(deps: ArtifactApiDeps): ServiceImpl<typeof ArtifactService> {
  const { store, allowances, deployBuckets, objects, grantTtlSeconds, logger, now } = deps;
  const sourceBuckets = deps.sourceBuckets ?? NO_BUCKETS;

  async function grant(method: "GET" | "PUT", doc: ArtifactDoc, at: Date): Promise<PresignedGrant> {
    return objects.presign(method, doc.bucket, doc.key, grantTtlSeconds, at);
  }

  async function requireArtifact(field: string, artifactId: string): Promise<ArtifactDoc> {
    const v = new Violations();
    v.artifactId(field, artifactId);
    v.throwIfAny();
    const doc = await store.get(artifactId);
    if (doc === null) throw notFound(field, artifactId);
    return doc;
  }

  /**
   * The PUT grant for one attempt's whole log, registered as the PENDING artifact
   * `<actionExecutionId>/log.<attempt>`: the runner commits it like an output, viewers read it
   * with CreateDownloadGrant, and it expires with its execution's other artifacts.
   */
  async function issueLogGrant(
    req: { pipelineName: string; pipelineExecutionId: string; stageName: string; actionName: string; actionExecutionId: string; bucket: string; logAttempt: number },
    at: Date,
  ) {
    const name = logArtifactName(req.logAttempt);
    const doc = await store.upsertPending(
      {
        _id: logArtifactIdOf(req.actionExecutionId, req.logAttempt),
        name,
        pipelineName: req.pipelineName,
        pipelineExecutionId: req.pipelineExecutionId,
        stageName: req.stageName,
        actionName: req.actionName,
        actionExecutionId: req.actionExecutionId,
        bucket: req.bucket,
        key: logKeyOf(req.pipelineName, req.pipelineExecutionId, req.actionExecutionId, req.logAttempt),
      },
      at,
    );
    if (doc.pipelineName !== req.pipelineName || doc.actionExecutionId !== req.actionExecutionId) {
      throw new DomainError("AccessDeniedException", `artifact ${doc._id} belongs to another job`, [
        { field: "actionExecutionId", message: `artifact "${doc._id}" was issued to another job` },
      ]);
    }
    return { name, artifactId: doc._id, grant: toGrant(await grant("PUT", doc, at)) };
  }

  return {
    async issueJobGrants(req) {
      const v = new Violations();
      v.name("pipelineName", req.pipelineName);
      v.uuid("pipelineExecutionId", req.pipelineExecutionId);
      v.name("stageName", req.stageName);
      v.name("actionName", req.actionName);
      v.actionExecutionId("actionExecutionId", req.actionExecutionId);
      v.bucket("bucket", req.bucket);
      if (req.inputArtifactIds.length > MAX_ARTIFACTS_PER_JOB) v.add("inputArtifactIds", `at most ${MAX_ARTIFACTS_PER_JOB} inputs`);
      if (req.outputNames.length > MAX_ARTIFACTS_PER_JOB) v.add("outputNames", `at most ${MAX_ARTIFACTS_PER_JOB} outputs`);
      req.inputArtifactIds.forEach((id, i) => v.artifactId(`inputArtifactIds[${i}]`, id));
      const seen = new Set<string>();
      req.outputNames.forEach((name, i) => {
        v.artifactName(`outputNames[${i}]`, name);
        if (seen.has(name)) v.add(`outputNames[${i}]`, `"${name}" is listed twice`);
        seen.add(name);
      });
      if (!Number.isInteger(req.logAttempt) || req.logAttempt < 0 || req.logAttempt > 999_999_999) v.add("logAttempt", "must be 0 (no log grant) or the job's attempt, 1 to 999999999");
      v.throwIfAny();
      const allowance = req.deploy === undefined ? undefined : deployAllowanceOf(req, req.deploy, deployBuckets, now());
      if (req.source !== undefined) checkSourceObject(req, req.source, sourceBuckets);

      // Inputs first: a job whose inputs are missing must not leave PENDING outputs behind.
      const found = await store.getMany(req.inputArtifactIds);
      const inputs = req.inputArtifactIds.map((id, i) => {
        const doc = found.get(id);
        if (doc === undefined) throw notFound(`inputArtifactIds[${i}]`, id);
        if (doc.status !== "STORED") throw notStored(`inputArtifactIds[${i}]`, id);
        // Artifact ids are visible to any viewer: a pipeline must not read another's artifacts by naming them.
        if (doc.pipelineName !== req.pipelineName) {
          throw new DomainError("AccessDeniedException", `artifact ${id} belongs to another pipeline`, [
            { field: `inputArtifactIds[${i}]`, message: `artifact "${id}" is not an artifact of pipeline "${req.pipelineName}"` },
          ]);
        }
        return doc;
      });
      if (allowance !== undefined) await allowances.put(allowance);

      if (req.outputNames.length > 0 || req.logAttempt > 0) await objects.ensureBucket(req.bucket);
      const at = now();
      const inputGrants = await Promise.all(
        inputs.map(async (doc) => ({
          name: doc.name,
          artifactId: doc._id,
          sha256: doc.sha256,
          sizeBytes: BigInt(doc.sizeBytes),
          grant: toGrant(await grant("GET", doc, at)),
        })),
      );
      const outputGrants = await Promise.all(
        req.outputNames.map(async (name) => {
          const doc = await store.upsertPending(
            {
              _id: artifactIdOf(req.actionExecutionId, name),
              name,
              pipelineName: req.pipelineName,
              pipelineExecutionId: req.pipelineExecutionId,
              stageName: req.stageName,
              actionName: req.actionName,
              actionExecutionId: req.actionExecutionId,
              bucket: req.bucket,
              key: artifactKeyOf(req.pipelineName, req.pipelineExecutionId, req.actionExecutionId, name),
            },
            at,
          );
          // The id is derived from the action execution, so an existing record must be this job's.
          if (doc.pipelineName !== req.pipelineName || doc.actionExecutionId !== req.actionExecutionId) {
            throw new DomainError("AccessDeniedException", `artifact ${doc._id} belongs to another job`, [
              { field: "actionExecutionId", message: `artifact "${doc._id}" was issued to another job` },
            ]);
          }
          return { name, artifactId: doc._id, grant: toGrant(await grant("PUT", doc, at)) };
        }),
      );
      const logGrant = req.logAttempt > 0 ? await issueLogGrant(req, at) : undefined;
      const sourceGrant =
        req.source === undefined ? undefined : toGrant(await objects.presign("GET", req.source.bucket, req.source.objectKey, grantTtlSeconds, at, req.source.versionId));
      logger.info("job grants issued", {
        actionExecutionId: req.actionExecutionId,
        inputs: inputGrants.length,
        outputs: outputGrants.length,
        log: logGrant !== undefined,
        ...(allowance === undefined ? {} : { deployBucket: allowance.bucket }),
        ...(req.source === undefined ? {} : { sourceBucket: req.source.bucket }),
      });
      return {
        inputs: inputGrants,
        outputs: outputGrants,
        ...(logGrant === undefined ? {} : { log: logGrant }),
        ...(sourceGrant === undefined ? {} : { source: sourceGrant }),
      };
    },

    async commitArtifact(req) {
      const v = new Violations();
      v.artifactId("artifactId", req.artifactId);
      v.sha256("sha256", req.sha256);
      if (req.sizeBytes < 0n) v.add("sizeBytes", "must not be negative");
      else if (req.sizeBytes > BigInt(Number.MAX_SAFE_INTEGER)) v.add("sizeBytes", "is too large");
      v.throwIfAny();
      const sha256 = req.sha256.toLowerCase();
      const sizeBytes = Number(req.sizeBytes);

      const doc = await store.get(req.artifactId);
      if (doc === null) throw notFound("artifactId", req.artifactId);
      if (doc.status === "STORED") return { artifact: toArtifact(sameCommit(doc, sha256, sizeBytes)) };

      const actual = await objects.sizeOf(doc.bucket, doc.key);
      if (actual === undefined) {
        throw new DomainError("ArtifactIntegrityException", `artifact ${doc._id} has no uploaded object`, [
          { field: "artifactId", message: `no object at ${doc.bucket}/${doc.key}` },
        ]);
      }
      if (actual !== sizeBytes) {
        throw new DomainError("ArtifactIntegrityException", `artifact ${doc._id}: sizeBytes is ${sizeBytes} but the stored object has ${actual} bytes`, [
          { field: "sizeBytes", message: `is ${sizeBytes} but the stored object has ${actual} bytes` },
        ]);
      }
      // The runner's claim is not evidence: the recorded SHA-256 is what every later download is
      // checked against, so it is computed here from the stored bytes.
      const digest = await objects.digestOf(doc.bucket, doc.key, sizeBytes);
      if (digest === undefined || digest.sizeBytes !== sizeBytes) {
        throw new DomainError("ArtifactIntegrityException", `artifact ${doc._id}: the stored object changed while it was verified`, [
          { field: "artifactId", message: `the object at ${doc.bucket}/${doc.key} changed while it was verified` },
        ]);
      }
      if (digest.sha256 !== sha256) {
        throw new DomainError("ArtifactIntegrityException", `artifact ${doc._id}: sha256 is ${sha256} but the stored object hashes to ${digest.sha256}`, [
          { field: "sha256", message: `is ${sha256} but the stored object hashes to ${digest.sha256}` },
        ]);
      }
      const stored = await store.markStored(doc._id, sha256, sizeBytes, now());
      if (stored === null) {
        // Another commit of the same artifact got there first; it is idempotent
        // only if it recorded the same content.
        const current = await store.get(doc._id);
        if (current === null) throw notFound("artifactId", doc._id);
        return { artifact: toArtifact(sameCommit(current, sha256, sizeBytes)) };
      }
      logger.info("artifact stored", { artifactId: stored._id, sizeBytes: stored.sizeBytes });
      return { artifact: toArtifact(stored) };
    },

    async getArtifact(req) {
      return { artifact: toArtifact(await requireArtifact("artifactId", req.artifactId)) };
    },

    async listArtifacts(req) {
      const v = new Violations();
      v.name("pipelineName", req.pipelineName);
      v.uuid("pipelineExecutionId", req.pipelineExecutionId);
      v.throwIfAny();
      const docs = await store.listByExecution(req.pipelineName, req.pipelineExecutionId);
      return { artifacts: docs.map(toArtifact) };
    },

    async createDownloadGrant(req) {
      const doc = await requireArtifact("artifactId", req.artifactId);
      if (doc.status !== "STORED") throw notStored("artifactId", doc._id);
      return { grant: toGrant(await grant("GET", doc, now())), sha256: doc.sha256 };
    },

    async renewOutputGrants(req) {
      const v = new Violations();
      v.actionExecutionId("actionExecutionId", req.actionExecutionId);
      if (req.outputNames.length === 0) v.add("outputNames", "is required");
      if (req.outputNames.length > MAX_ARTIFACTS_PER_JOB) v.add("outputNames", `at most ${MAX_ARTIFACTS_PER_JOB} outputs`);
      const seen = new Set<string>();
      req.outputNames.forEach((name, i) => {
        v.artifactName(`outputNames[${i}]`, name);
        if (seen.has(name)) v.add(`outputNames[${i}]`, `"${name}" is listed twice`);
        seen.add(name);
      });
      v.throwIfAny();

      // Only outputs registered for this action execution by IssueJobGrants, and
      // only while PENDING: a committed artifact is immutable.
      const ids = req.outputNames.map((name) => artifactIdOf(req.actionExecutionId, name));
      const found = await store.getMany(ids);
      const docs = ids.map((id, i) => {
        const doc = found.get(id);
        if (doc === undefined) throw notFound(`outputNames[${i}]`, id);
        if (doc.status !== "PENDING") {
          throw new DomainError("ConflictException", `artifact ${id} is already stored; its upload grant is not renewed`, [
            { field: `outputNames[${i}]`, message: `artifact "${id}" has already been committed` },
          ]);
        }
        return doc;
      });
      const at = now();
      const outputs = await Promise.all(
        docs.map(async (doc) => ({ name: doc.name, artifactId: doc._id, grant: toGrant(await grant("PUT", doc, at)) })),
      );
      logger.info("output grants renewed", { actionExecutionId: req.actionExecutionId, outputs: outputs.length });
      return { outputs };
    },

    async issueDeployGrants(req) {
      const v = new Violations();
      v.actionExecutionId("actionExecutionId", req.actionExecutionId);
      const bucketProblem = bucketNameProblem(req.bucket);
      if (bucketProblem !== undefined) v.add("bucket", bucketProblem);
      if (req.keys.length === 0) v.add("keys", "is required");
      if (req.keys.length > MAX_DEPLOY_KEYS_PER_CALL) v.add("keys", `at most ${MAX_DEPLOY_KEYS_PER_CALL} keys per call`);
      else {
        req.keys.forEach((key, i) => {
          const problem = objectKeyProblem(key, { prefix: false });
          if (problem !== undefined) v.add(`keys[${i}]`, problem);
        });
      }
      v.throwIfAny();

      const at = now();
      const allowance = await allowances.get(req.actionExecutionId);
      if (allowance === null) {
        throw denied("actionExecutionId", `action execution "${req.actionExecutionId}" is not an ObjectStore deploy job with a deploy allowance`);
      }
      if (allowance.expiresAt.getTime() <= at.getTime()) {
        throw denied("actionExecutionId", `the deploy allowance of action execution "${req.actionExecutionId}" expired at its job's deadline`);
      }
      if (req.bucket !== allowance.bucket) {
        throw denied("bucket", `action execution "${req.actionExecutionId}" may deploy to bucket "${allowance.bucket}" only, not "${req.bucket}"`);
      }
      // DEPLOY_BUCKETS may have been narrowed since the job was published.
      if (!deployBuckets.allows(allowance.pipelineName, allowance.bucket)) {
        throw denied("bucket", `pipeline "${allowance.pipelineName}" is no longer allowed to deploy to bucket "${allowance.bucket}" (DEPLOY_BUCKETS)`);
      }
      req.keys.forEach((key, i) => {
        if (!insideAllowance(allowance, key)) {
          const where = allowance.extract ? (allowance.objectKey === "" ? "the bucket" : `"${allowance.objectKey}/"`) : `"${allowance.objectKey}" only`;
          throw denied(`keys[${i}]`, `"${key}" is outside this deploy's target: it may write ${where}`);
        }
      });

      await objects.ensureBucket(allowance.bucket);
      const grants = await Promise.all(req.keys.map(async (key) => toGrant(await objects.presign("PUT", allowance.bucket, key, grantTtlSeconds, at))));
      logger.info("deploy grants issued", { actionExecutionId: req.actionExecutionId, bucket: allowance.bucket, keys: grants.length });
      return { grants };
    },
  };
}

/**
 * Checks an ObjectStore deploy job's target and turns it into its allowance. A refusal is a
 * ValidationException naming the action's configuration field, so the orchestrator fails the
 * action with it instead of retrying.
 */
function deployAllowanceOf(
  req: { pipelineName: string; actionExecutionId: string; bucket: string },
  target: DeployTarget,
  deployBuckets: DeployBuckets,
  at: Date,
): DeployAllowance {
  const v = new Violations();
  const bucketProblem = bucketAccessProblem(req, target.bucket, deployBuckets, { verb: "deploy to", role: "deploy actions may not write it", variable: "DEPLOY_BUCKETS" });
  if (bucketProblem !== undefined) v.add("configuration.BucketName", bucketProblem);
  const keyProblem = objectKeyProblem(target.objectKey, { prefix: target.extract });
  if (keyProblem !== undefined) v.add("configuration.ObjectKey", keyProblem);
  const expiresAt = target.expiresAt === undefined ? undefined : timestampDate(target.expiresAt);
  if (expiresAt === undefined || expiresAt.getTime() <= at.getTime()) v.add("deploy.expiresAt", "must be the job's deadline, in the future");
  v.throwIfAny();
  return {
    _id: req.actionExecutionId,
    pipelineName: req.pipelineName,
    bucket: target.bucket,
    objectKey: target.extract ? trimPrefix(target.objectKey) : target.objectKey,
    extract: target.extract,
    expiresAt: expiresAt ?? at,
  };
}

/** Allows nothing: an artifact service without SOURCE_BUCKETS lets no pipeline read a source bucket. */
const NO_BUCKETS: DeployBuckets = { spec: "", allows: () => false };

/**
 * Checks an ObjectStore source job's object against SOURCE_BUCKETS. A refusal is a
 * ValidationException naming the action's configuration field, so the orchestrator fails the
 * action with it instead of retrying. The artifact store's own bucket is never a source: its
 * objects are other executions' (and pipelines') artifacts.
 */
function checkSourceObject(req: { pipelineName: string; bucket: string }, source: SourceObject, sourceBuckets: DeployBuckets): void {
  const v = new Violations();
  const bucketProblem = bucketAccessProblem(req, source.bucket, sourceBuckets, { verb: "read", role: "source actions may not read it", variable: "SOURCE_BUCKETS", unsetNote: "so no source bucket is allowed" });
  if (bucketProblem !== undefined) v.add("configuration.S3Bucket", bucketProblem);
  const keyProblem = objectKeyProblem(source.objectKey, { prefix: false });
  if (keyProblem !== undefined) v.add("configuration.S3ObjectKey", keyProblem);
  if (source.versionId.length > 1024) v.add("source.versionId", "must be at most 1024 characters");
  v.throwIfAny();
}

/**
 * Why a pipeline's action may not use `bucket`: not a bucket name, the pipeline's own artifact
 * store (other executions' artifacts), or outside the allow-list (DEPLOY_BUCKETS, SOURCE_BUCKETS).
 */
function bucketAccessProblem(
  req: { pipelineName: string; bucket: string },
  bucket: string,
  allowed: DeployBuckets,
  how: { verb: string; role: string; variable: string; unsetNote?: string },
): string | undefined {
  const nameProblem = bucketNameProblem(bucket);
  if (nameProblem !== undefined) return nameProblem;
  if (bucket === req.bucket) return `"${bucket}" is the pipeline's artifact store; ${how.role}`;
  if (allowed.allows(req.pipelineName, bucket)) return undefined;
  const none = how.unsetNote !== undefined && allowed.spec === "" ? ` (${how.variable} is unset, ${how.unsetNote})` : "";
  return `pipeline "${req.pipelineName}" may not ${how.verb} bucket "${bucket}": allow it in the artifact service's ${how.variable} (e.g. ${req.pipelineName}=${bucket})${none}`;
}

function insideAllowance(allowance: DeployAllowance, key: string): boolean {
  if (!allowance.extract) return key === allowance.objectKey;
  return allowance.objectKey === "" || key.startsWith(`${allowance.objectKey}/`);
}

function denied(field: string, message: string): DomainError {
  return new DomainError("AccessDeniedException", message, [{ field, message }]);
}

/** A commit of an already STORED artifact succeeds only if it repeats the recorded content. */
function sameCommit(doc: ArtifactDoc, sha256: string, sizeBytes: number): ArtifactDoc {
  if (doc.sha256 === sha256 && doc.sizeBytes === sizeBytes) return doc;
  const field = doc.sha256 !== sha256 ? "sha256" : "sizeBytes";
  throw new DomainError("ConflictException", `artifact ${doc._id} is already stored with different content`, [
    { field, message: "differs from the committed artifact" },
  ]);
}

function notFound(field: string, artifactId: string): DomainError {
  return new DomainError("ArtifactNotFoundException", `artifact ${artifactId} not found`, [{ field, message: `artifact "${artifactId}" not found` }]);
}

function notStored(field: string, artifactId: string): DomainError {
  return new DomainError("ArtifactNotFoundException", `artifact ${artifactId} is not stored yet`, [
    { field, message: `artifact "${artifactId}" has not been committed` },
  ]);
}

function toGrant(g: PresignedGrant): MessageInitShape<typeof GrantSchema> {
  return { url: g.url, method: g.method, bucket: g.bucket, key: g.key, expiresAt: timestampFromDate(g.expiresAt) };
}

function toArtifact(doc: ArtifactDoc): MessageInitShape<typeof ArtifactSchema> {
  return {
    artifactId: doc._id,
    name: doc.name,
    pipelineName: doc.pipelineName,
    pipelineExecutionId: doc.pipelineExecutionId,
    stageName: doc.stageName,
    actionName: doc.actionName,
    actionExecutionId: doc.actionExecutionId,
    bucket: doc.bucket,
    key: doc.key,
    sha256: doc.sha256,
    sizeBytes: BigInt(doc.sizeBytes),
    status: doc.status,
    created: timestampFromDate(doc.created),
  };
}
