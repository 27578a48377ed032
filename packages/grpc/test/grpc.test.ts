import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Client as GrpcClient, Metadata, credentials, makeClientConstructor, status } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";
import { DomainError, invalid } from "@sluice/domain";
import { ApprovalSchema, ApprovalService, PipelineService } from "@sluice/proto";
import { service as healthService } from "grpc-health-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serializerOf, deserializerOf } from "../src/adapter.js";
import { createTokenAuthenticator } from "../src/auth.js";
import type { PermissionTable } from "../src/auth.js";
import { SluiceRpcError, createClient, isRpcError } from "../src/client.js";
import type { Client } from "../src/client.js";
import { createServer } from "../src/server.js";
import type { CallContext, ServiceImpl, SluiceServer } from "../src/server.js";
import { ServerReflectionRequestSchema, ServerReflectionResponseSchema, WatchTestService, recordingLogger } from "./fixtures.js";
import type { ReflectionResponse } from "./fixtures.js";

const tokens = {
  admin: "admin-token-1",
  viewer: "viewer-token-2",
  approver: "approver-token-3",
};

const permissions: PermissionTable = {
  ListApprovals: ["viewer"],
  PutApprovalResult: ["approver"],
  // Same method name in the test service: the qualified key wins there.
  "WatchTestService.ListApprovals": ["approver"],
  WatchApprovals: ["viewer"],
};

/** What the handlers saw, for assertions about the server side. */
interface Seen {
  contexts: CallContext[];
  streamSignals: AbortSignal[];
  streamFinally: number;
  throwOnList?: Error;
}

describe("@sluice/grpc server and client over a real connection", () => {
  const logger = recordingLogger();
  const seen: Seen = { contexts: [], streamSignals: [], streamFinally: 0 };
  let server: SluiceServer;
  let address: string;
  let approvals: Client<typeof ApprovalService>;
  let watch: Client<typeof WatchTestService>;

  const approvalImpl: ServiceImpl<typeof ApprovalService> = {
    listApprovals(req, ctx) {
      seen.contexts.push(ctx);
      if (seen.throwOnList !== undefined) return Promise.reject(seen.throwOnList);
      return Promise.resolve({
        approvals: [{ token: "t-1", pipelineName: req.pipelineName, status: "Pending", created: timestampFromDate(new Date("2026-01-02T03:04:05Z")) }],
        nextToken: req.nextToken === "" ? "page-2" : "",
      });
    },
    async putApprovalResult(req, ctx) {
      seen.contexts.push(ctx);
      if (req.token !== "good") throw new DomainError("InvalidApprovalTokenException", `approval token "${req.token}" is not valid for ${req.pipelineName}`);
      // Waits for the caller's deadline: shows that ctx.signal follows it.
      if (req.pipelineName === "slow") await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      return { approvedAt: timestampFromDate(new Date(0)) };
    },
    getApproval(req) {
      return Promise.resolve({ approval: { token: req.token, status: "Pending" } });
    },
  };

  const watchImpl: ServiceImpl<typeof WatchTestService> = {
    async *watchApprovals(req, ctx) {
      seen.streamSignals.push(ctx.signal);
      try {
        for (let i = 0; ; i++) {
          if (req.status === "fail" && i === 2) throw new DomainError("PipelineNotFoundException", `pipeline ${req.pipelineName} was deleted`);
          if (req.status === "finite" && i === 3) return;
          yield create(ApprovalSchema, { token: `t-${i}`, pipelineName: req.pipelineName });
          // Slow producer: makes the server wait between messages, as a watch does.
          if (req.status === "" && i >= 3) await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
          if (ctx.signal.aborted) return;
        }
      } finally {
        seen.streamFinally++;
      }
    },
    listApprovals(_req, ctx) {
      seen.contexts.push(ctx);
      return Promise.resolve({ approvals: [], nextToken: "from-watch-service" });
    },
  };

  beforeAll(async () => {
    server = createServer({
      logger,
      auth: createTokenAuthenticator([
        { principal: "root", roles: ["admin"], token: tokens.admin },
        { principal: "val", roles: ["viewer"], token: tokens.viewer },
        { principal: "april", roles: ["approver"], token: tokens.approver },
      ]),
      permissions,
    });
    server.add(ApprovalService, approvalImpl);
    server.add(WatchTestService, watchImpl);
    const port = await server.listen("127.0.0.1", 0);
    address = `127.0.0.1:${port}`;
    approvals = createClient(ApprovalService, address, { token: tokens.viewer, deadlineMs: 10_000 });
    watch = createClient(WatchTestService, address, { token: () => tokens.viewer });
  });

  afterAll(async () => {
    approvals.close();
    watch.close();
    await server.stop(1000);
  });

  it("answers a unary call with the handler's response and passes the principal and raw header", async () => {
    const res = await approvals.listApprovals({ pipelineName: "deploy-web" });
    expect(res.$typeName).toBe("sluice.v1.ListApprovalsResponse");
    expect(res.nextToken).toBe("page-2");
    expect(res.approvals).toHaveLength(1);
    expect(res.approvals[0]).toMatchObject({ token: "t-1", pipelineName: "deploy-web", status: "Pending" });
    expect(res.approvals[0]?.created?.seconds).toBe(BigInt(Date.parse("2026-01-02T03:04:05Z") / 1000));
    const ctx = seen.contexts.at(-1);
    expect(ctx?.principal).toEqual({ id: "val", roles: ["viewer"] });
    expect(ctx?.authorization).toBe(`Bearer ${tokens.viewer}`);
  });

  it("sends a DomainError's status, AWS code and field violations to the client", async () => {
    seen.throwOnList = invalid("InvalidStructureException", [
      { field: "pipeline.stages[0].name", message: "must match [A-Za-z0-9.@_-]+, got \"bühne\"" },
      { field: "pipeline.stages[1].actions[0].inputArtifacts[0].name", message: "no earlier action outputs \"Src\"" },
    ]);
    try {
      const err = await approvals.listApprovals({}).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SluiceRpcError);
      const rpc = err as SluiceRpcError;
      expect(rpc.code).toBe(status.INVALID_ARGUMENT);
      expect(rpc.errorCode).toBe("InvalidStructureException");
      expect(rpc.message).toBe('pipeline.stages[0].name: must match [A-Za-z0-9.@_-]+, got "bühne"; pipeline.stages[1].actions[0].inputArtifacts[0].name: no earlier action outputs "Src"');
      expect(rpc.violations).toEqual([
        { field: "pipeline.stages[0].name", message: 'must match [A-Za-z0-9.@_-]+, got "bühne"' },
        { field: "pipeline.stages[1].actions[0].inputArtifacts[0].name", message: 'no earlier action outputs "Src"' },
      ]);
      expect(isRpcError(rpc, status.INVALID_ARGUMENT)).toBe(true);
      expect(isRpcError(rpc, "InvalidStructureException")).toBe(true);
      expect(isRpcError(rpc, "PipelineNotFoundException")).toBe(false);
    } finally {
      delete seen.throwOnList;
    }
  });

  it("maps a domain error without violations (approver calling PutApprovalResult with a stale token)", async () => {
    const err = await approvals
      .putApprovalResult({ pipelineName: "web", token: "stale" }, { authorization: `Bearer ${tokens.approver}` })
      .catch((e: unknown) => e);
    expect(isRpcError(err, status.FAILED_PRECONDITION)).toBe(true);
    expect((err as SluiceRpcError).errorCode).toBe("InvalidApprovalTokenException");
    expect((err as SluiceRpcError).violations).toEqual([]);
    expect(seen.contexts.at(-1)?.principal.id).toBe("april");
  });

  it("turns an unexpected error into INTERNAL without leaking its message, and logs the cause", async () => {
    seen.throwOnList = new Error("mongo at mongodb://user:hunter2@db failed");
    try {
      const err = await approvals.listApprovals({}).catch((e: unknown) => e);
      expect(isRpcError(err, status.INTERNAL)).toBe(true);
      const rpc = err as SluiceRpcError;
      expect(rpc.message).toBe("internal error");
      expect(rpc.errorCode).toBeUndefined();
      expect(JSON.stringify(rpc.metadata.getMap())).not.toContain("hunter2");
      const logged = logger.lines.find((l) => l.level === "error" && l.fields["method"] === "/sluice.v1.ApprovalService/ListApprovals");
      expect(JSON.stringify(logged?.fields)).toContain("hunter2");
    } finally {
      delete seen.throwOnList;
    }
  });

  it("rejects calls without a bearer token or with an unknown one as UNAUTHENTICATED", async () => {
    const anonymous = createClient(ApprovalService, address);
    try {
      const missing = await anonymous.listApprovals({}).catch((e: unknown) => e);
      expect(isRpcError(missing, status.UNAUTHENTICATED)).toBe(true);
      expect((missing as SluiceRpcError).message).toBe("missing bearer token");
      expect((missing as SluiceRpcError).errorCode).toBe("UnauthenticatedException");
      const wrong = await anonymous.listApprovals({}, { authorization: "Bearer not-a-token" }).catch((e: unknown) => e);
      expect(isRpcError(wrong, status.UNAUTHENTICATED)).toBe(true);
      expect((wrong as SluiceRpcError).message).toBe("invalid token");
      const basic = await anonymous.listApprovals({}, { authorization: `Basic ${tokens.admin}` }).catch((e: unknown) => e);
      expect((basic as SluiceRpcError).message).toBe("missing bearer token");
    } finally {
      anonymous.close();
    }
    expect(JSON.stringify(logger.lines)).not.toContain("not-a-token");
    expect(JSON.stringify(logger.lines)).not.toContain(tokens.admin);
  });

  it("rejects a valid token without the method's role as PERMISSION_DENIED; admin passes", async () => {
    const err = await approvals.putApprovalResult({ pipelineName: "web", token: "good" }).catch((e: unknown) => e);
    expect(isRpcError(err, status.PERMISSION_DENIED)).toBe(true);
    expect((err as SluiceRpcError).errorCode).toBe("AccessDeniedException");
    expect((err as SluiceRpcError).message).toBe('principal "val" is not allowed to call PutApprovalResult');
    const ok = await approvals.putApprovalResult({ pipelineName: "web", token: "good" }, { authorization: `Bearer ${tokens.admin}` });
    expect(ok.approvedAt?.seconds).toBe(0n);
  });

  it("checks the qualified Service.Method key before the bare method name", async () => {
    // ListApprovals is open to viewers, but WatchTestService.ListApprovals only to approvers.
    const denied = await watch.listApprovals({}).catch((e: unknown) => e);
    expect(isRpcError(denied, status.PERMISSION_DENIED)).toBe(true);
    const ok = await watch.listApprovals({}, { authorization: `Bearer ${tokens.approver}` });
    expect(ok.nextToken).toBe("from-watch-service");
  });

  it("streams until the handler returns", async () => {
    const tokensSeen: string[] = [];
    for await (const a of watch.watchApprovals({ pipelineName: "web", status: "finite" })) tokensSeen.push(a.token);
    expect(tokensSeen).toEqual(["t-0", "t-1", "t-2"]);
  });

  it("ends a stream with the handler's DomainError after the messages sent before it", async () => {
    const got: string[] = [];
    const err = await (async () => {
      for await (const a of watch.watchApprovals({ pipelineName: "gone", status: "fail" })) got.push(a.token);
    })().catch((e: unknown) => e);
    expect(got).toEqual(["t-0", "t-1"]);
    expect(isRpcError(err, status.NOT_FOUND)).toBe(true);
    expect((err as SluiceRpcError).errorCode).toBe("PipelineNotFoundException");
    expect((err as SluiceRpcError).message).toBe("pipeline gone was deleted");
  });

  it("cancels the server side when the client leaves a stream early", async () => {
    const before = seen.streamSignals.length;
    const finallyBefore = seen.streamFinally;
    const got: string[] = [];
    for await (const a of watch.watchApprovals({ pipelineName: "web" })) {
      got.push(a.token);
      if (got.length === 2) break;
    }
    expect(got).toEqual(["t-0", "t-1"]);
    const signal = seen.streamSignals[before];
    expect(signal).toBeDefined();
    await expect.poll(() => signal?.aborted).toBe(true);
    await expect.poll(() => seen.streamFinally).toBe(finallyBefore + 1);
  });

  it("cancels a stream when the caller's AbortSignal fires", async () => {
    const before = seen.streamSignals.length;
    const controller = new AbortController();
    const got: string[] = [];
    const err = await (async () => {
      for await (const a of watch.watchApprovals({ pipelineName: "web" }, { signal: controller.signal })) {
        got.push(a.token);
        if (got.length === 4) controller.abort();
      }
    })().catch((e: unknown) => e);
    expect(isRpcError(err, status.CANCELLED)).toBe(true);
    await expect.poll(() => seen.streamSignals[before]?.aborted).toBe(true);
  });

  it("applies the deadline: the client gets DEADLINE_EXCEEDED and the handler's signal aborts", async () => {
    const before = seen.contexts.length;
    const err = await approvals
      .putApprovalResult({ pipelineName: "slow", token: "good" }, { authorization: `Bearer ${tokens.approver}`, deadlineMs: 200 })
      .catch((e: unknown) => e);
    expect(isRpcError(err, status.DEADLINE_EXCEEDED)).toBe(true);
    await expect.poll(() => seen.contexts[before]?.signal.aborted).toBe(true);
  });

  it("rejects a unary call at once when the caller's signal is already aborted", async () => {
    const err = await approvals.listApprovals({}, { signal: AbortSignal.abort() }).catch((e: unknown) => e);
    expect(isRpcError(err, status.CANCELLED)).toBe(true);
  });

  it("serves grpc.health.v1.Health without a token: SERVING for the server and each service", async () => {
    const Health = makeClientConstructor(healthService, "Health");
    const health = new Health(address, credentials.createInsecure()) as unknown as GrpcClient & {
      check(req: { service: string }, cb: (err: ServiceError | null, res?: { status: unknown }) => void): void;
    };
    try {
      const check = (name: string): Promise<unknown> =>
        new Promise((resolve, reject) => health.check({ service: name }, (err, res) => (err ? reject(err) : resolve(res?.status))));
      expect(await check("")).toBe("SERVING");
      expect(await check("sluice.v1.ApprovalService")).toBe("SERVING");
      expect(await check("sluice.test.v1.WatchTestService")).toBe("SERVING");
      await expect(check("sluice.v1.PipelineService")).rejects.toMatchObject({ code: status.NOT_FOUND });
    } finally {
      health.close();
    }
  });

  it("serves reflection v1 without a token: lists the added services and returns their files with imports", async () => {
    const client = new GrpcClient(address, credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        serializerOf(ServerReflectionRequestSchema),
        deserializerOf(ServerReflectionResponseSchema),
        new Metadata(),
      );
      const responses: ReflectionResponse[] = [];
      const done = new Promise<void>((resolve, reject) => {
        call.on("data", (r: ReflectionResponse) => responses.push(r));
        call.on("end", resolve);
        call.on("error", reject);
      });
      call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "*" } }));
      call.write(create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "sluice.test.v1.WatchTestService" } }));
      call.end();
      await done;
      const [list, files] = responses;
      expect(list?.messageResponse.case).toBe("listServicesResponse");
      const names = list?.messageResponse.case === "listServicesResponse" ? list.messageResponse.value.service.map((s) => s.name) : [];
      // Exactly the services added here, plus health.
      expect(names.sort()).toEqual(["grpc.health.v1.Health", "sluice.test.v1.WatchTestService", "sluice.v1.ApprovalService"]);
      expect(files?.messageResponse.case).toBe("fileDescriptorResponse");
      const protos = files?.messageResponse.case === "fileDescriptorResponse" ? files.messageResponse.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b)) : [];
      expect(protos[0]?.name).toBe("sluice/test/v1/watch_test.proto");
      expect(protos[0]?.service[0]?.method.map((m) => m.name)).toEqual(["WatchApprovals", "ListApprovals"]);
      expect(protos.map((p) => p.name)).toEqual(expect.arrayContaining(["sluice/v1/approval_service.proto", "google/protobuf/timestamp.proto", "sluice/v1/execution.proto"]));
    } finally {
      client.close();
    }
  });
});

describe("createServer lifecycle", () => {
  it("refuses services added after listen and unimplemented methods", async () => {
    const server = createServer({ logger: recordingLogger(), auth: createTokenAuthenticator([]), permissions: {} });
    expect(() => server.add(ApprovalService, { listApprovals: () => Promise.resolve({}) } as unknown as ServiceImpl<typeof ApprovalService>)).toThrow(
      "sluice.v1.ApprovalService: no handler for PutApprovalResult (expected impl.putApprovalResult)",
    );
    await server.listen("127.0.0.1", 0);
    expect(() => server.add(PipelineService, {} as ServiceImpl<typeof PipelineService>)).toThrow("services must be added before listen()");
    await server.stop(1000);
  });

  it("stop() cancels calls still running at the deadline and is idempotent", async () => {
    const signals: AbortSignal[] = [];
    const server = createServer({
      logger: recordingLogger(),
      auth: createTokenAuthenticator([{ principal: "v", roles: ["viewer"], token: "tok" }]),
      permissions: { WatchApprovals: ["viewer"], ListApprovals: ["viewer"] },
    });
    server.add(WatchTestService, {
      async *watchApprovals(_req, ctx) {
        signals.push(ctx.signal);
        yield { token: "first" };
        await new Promise((resolve) => ctx.signal.addEventListener("abort", resolve, { once: true }));
      },
      listApprovals: () => Promise.resolve({}),
    });
    const port = await server.listen("127.0.0.1", 0);
    const client = createClient(WatchTestService, `127.0.0.1:${port}`, { token: "tok" });
    try {
      const iterator = client.watchApprovals({})[Symbol.asyncIterator]();
      const firstMessage = await iterator.next();
      expect(firstMessage.done ? undefined : firstMessage.value.token).toBe("first");
      const pending = iterator.next().catch((e: unknown) => e);
      const first = server.stop(100);
      expect(server.stop(5000)).toBe(first);
      await first;
      await expect.poll(() => signals[0]?.aborted).toBe(true);
      const end = await pending;
      expect(isRpcError(end)).toBe(true);
    } finally {
      client.close();
    }
  });
});
