import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DomainError } from "@sluice/domain";
import type { Logger } from "@sluice/domain";
import type { ArtifactSchema, GrantSchema } from "@sluice/proto";
import type { ArtifactService } from "@sluice/proto";
import type { PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { ArtifactDoc, ArtifactStore } from "./artifact-store.js";
import type { ObjectStore, PresignedGrant } from "./object-store.js";
import { MAX_ARTIFACTS_PER_JOB, Violations, artifactIdOf, artifactKeyOf } from "./validation.js";

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
};

/** What the handlers need. */
export interface ArtifactApiDeps {
  store: ArtifactStore;
  objects: ObjectStore;
  /** Lifetime of every presigned URL, ≤ 7 days. */
  grantTtlSeconds: number;
  logger: Logger;
  now: () => Date;
}

/** The gRPC `ArtifactService` implementation. */
export function createArtifactApi(deps: ArtifactApiDeps): ServiceImpl<typeof ArtifactService> {
  const { store, objects, grantTtlSeconds, logger, now } = deps;

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
      v.throwIfAny();

      // Inputs first: a job whose inputs are missing must not leave PENDING outputs behind.
      const found = await store.getMany(req.inputArtifactIds);
      const inputs = req.inputArtifactIds.map((id, i) => {
        const doc = found.get(id);
        if (doc === undefined) throw notFound(`inputArtifactIds[${i}]`, id);
        if (doc.status !== "STORED") throw notStored(`inputArtifactIds[${i}]`, id);
        return doc;
      });

      if (req.outputNames.length > 0) await objects.ensureBucket(req.bucket);
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
          return { name, artifactId: doc._id, grant: toGrant(await grant("PUT", doc, at)) };
        }),
      );
      logger.info("job grants issued", {
        actionExecutionId: req.actionExecutionId,
        inputs: inputGrants.length,
        outputs: outputGrants.length,
      });
      return { inputs: inputGrants, outputs: outputGrants };
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
  };
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
