import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { DEFAULT_MAX_RESULTS, DomainError, MAX_LIST_RESULTS, invalid, stripUserinfo } from "@sluice/domain";
import type { PermissionTable, ServiceImpl } from "@sluice/grpc";
import type { SourceService, SourceStateSchema } from "@sluice/proto";
import type { CursorStore, SourceCursor } from "./cursor-store.js";

/** Reading source states is for viewers (and the services that show them); admin passes every check. */
export const SOURCE_STATE_PERMISSIONS: PermissionTable = {
  ListSourceStates: ["viewer", "operator", "service"],
};

/** The gRPC `SourceService` implementation. */
export function createSourceApi(store: CursorStore, now: () => number = Date.now): Pick<ServiceImpl<typeof SourceService>, "listSourceStates"> {
  return {
    async listSourceStates(req) {
      const limit = req.maxResults === 0 ? DEFAULT_MAX_RESULTS : req.maxResults;
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_RESULTS) {
        throw invalid("ValidationException", [{ field: "maxResults", message: `must be between 1 and ${MAX_LIST_RESULTS}` }]);
      }
      const after = req.nextToken === "" ? "" : decodeToken(req.nextToken);
      // One extra row tells whether another page exists.
      const docs = await store.list(req.pipelineName, after, limit + 1);
      const page = docs.slice(0, limit);
      const last = page.at(-1);
      const at = now();
      return {
        sourceStates: page.map((c) => toSourceState(c, at)),
        nextToken: docs.length > limit && last !== undefined ? Buffer.from(last._id, "utf8").toString("base64url") : "",
      };
    },
  };
}

function decodeToken(token: string): string {
  const id = Buffer.from(token, "base64url").toString("utf8");
  if (id === "" || !id.includes("/") || Buffer.from(id, "utf8").toString("base64url") !== token) {
    throw new DomainError("InvalidNextTokenException", "nextToken is not a token returned by ListSourceStates", [{ field: "nextToken", message: "is not valid" }]);
  }
  return id;
}

/** A cursor as shown to people: credentials out of the URL, an expired lease shown as free. */
export function toSourceState(c: SourceCursor, now: number): MessageInitShape<typeof SourceStateSchema> {
  const held = (c.leaseUntil ?? 0) > now;
  return {
    pipelineName: c.pipelineName,
    actionName: c.actionName,
    repositoryUrl: stripUserinfo(c.repositoryUrl),
    branch: c.branch,
    lastRevision: c.lastRevision ?? "",
    ...(c.lastPolledAt === undefined ? {} : { lastPolledAt: timestampFromMs(c.lastPolledAt) }),
    nextPollAt: timestampFromMs(c.nextPollAt),
    consecutiveFailures: c.consecutiveFailures ?? 0,
    lastError: c.lastError ?? "",
    leaseOwner: held ? (c.leaseOwner ?? "") : "",
    hasTrigger: c.trigger !== null && c.trigger !== undefined,
    lastSkipReason: c.lastSkipReason ?? "",
  };
}
