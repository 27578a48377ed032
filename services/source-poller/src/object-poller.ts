import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Bus } from "@sluice/bus";
import type { Logger } from "@sluice/domain";
import { SourceChangedSchema } from "@sluice/proto";
import { Client } from "minio";
import { pollLeasedRound } from "./leased-round.js";
import type { LeasedRoundOptions } from "./leased-round.js";
import type { HeldObjectCursor, ObjectCursorStore } from "./object-cursor-store.js";

/** What a HEAD of the source object tells; undefined when there is no such object (or bucket). */
export interface ObjectHead {
  etag: string;
  /** "" on an unversioned bucket. */
  versionId: string;
  lastModified?: Date;
}

/** HEADs one object (statObject with the poller's own object-store credentials). */
export type HeadObject = (bucket: string, key: string) => Promise<ObjectHead | undefined>;

/** How the poller reaches the object store: as the artifact service reads S3_ENDPOINT & co. */
export interface ObjectStoreAccess {
  endPoint: string;
  port: number;
  useSSL: boolean;
  accessKey: string;
  secretKey: string;
  region: string;
}

/** A HeadObject over the minio client. */
export function createHeadObject(access: ObjectStoreAccess): HeadObject {
  const client = new Client(access);
  return async (bucket, key) => {
    try {
      const stat = await client.statObject(bucket, key);
      // S3 and MinIO call the one version of an object in an unversioned bucket "null".
      const versionId = stat.versionId === null || stat.versionId === undefined || stat.versionId === "null" ? "" : stat.versionId;
      return { etag: stat.etag.replace(/^"(.*)"$/, "$1"), versionId, lastModified: stat.lastModified };
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === "NotFound" || code === "NoSuchKey" || code === "NoSuchBucket") return undefined;
      throw err;
    }
  };
}

/** The revision a head stands for: the VersionId on a versioned bucket, else the ETag. */
export function revisionOf(head: ObjectHead): string {
  return head.versionId === "" ? head.etag : head.versionId;
}

export interface ObjectPollerOptions extends LeasedRoundOptions {
  store: ObjectCursorStore;
  head: HeadObject;
  bus: Bus;
}

/**
 * Checks every due ObjectStore source this replica can lease, once, like the Git poll: the first
 * poll records a baseline, a new revision is published as SourceChanged (message id
 * `pipeline:action:revision`) before the cursor moves, so a crash in between publishes it again
 * harmlessly. A missing object is no change: its first appearance is the baseline.
 */
export async function pollObjectsOnce(o: ObjectPollerOptions): Promise<number> {
  return pollLeasedRound(o, o.store, "object source", (cursor, log) => pollCursor(o, cursor, log));
}

async function pollCursor(o: ObjectPollerOptions, cursor: HeldObjectCursor, log: Logger): Promise<number> {
  const head = await o.head(cursor.bucket, cursor.objectKey);
  if (head === undefined) return 0;
  const revision = revisionOf(head);
  if (revision === cursor.lastRevision) return 0;
  if (cursor.lastRevision === null) {
    await o.store.advance(cursor, null, revision);
    log.info("object source baseline recorded", { revision });
    return 0;
  }
  const where = `s3://${cursor.bucket}/${cursor.objectKey}`;
  const eventId = `${cursor.pipelineName}:${cursor.actionName}:${revision}`;
  const msg = create(SourceChangedSchema, {
    eventId,
    pipelineName: cursor.pipelineName,
    sourceActionName: cursor.actionName,
    revision: { revisionId: revision, revisionSummary: where, created: timestampFromMs(head.lastModified?.getTime() ?? Date.now()) },
    triggerType: "PollForSourceChanges",
    triggerDetail: where.slice(0, 1024),
  });
  await o.bus.publish(o.bus.subjects.sourceSubject(cursor.pipelineName), SourceChangedSchema, msg, { msgId: eventId });
  await o.store.advance(cursor, cursor.lastRevision, revision);
  log.info("object source change detected", { revision, previous: cursor.lastRevision });
  return 1;
}
