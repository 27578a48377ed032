import { createServer, createTokenAuthenticator, isRpcError } from "@sluice/grpc";
import type { ServiceImpl } from "@sluice/grpc";
import { DomainError, noopLogger } from "@sluice/domain";
import { create } from "@bufbuild/protobuf";
import { ApprovalService, PipelineDeclarationSchema, PipelineService } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { createApprovalClient, createSluiceClient, readPipelineJson } from "../src/index.js";

describe("createSluiceClient", () => {
  it("calls PipelineService with the token and surfaces AWS error names", async () => {
    const created: string[] = [];
    const impl = Object.fromEntries(
      PipelineService.methods.map((m) => [m.localName, () => Promise.reject(new DomainError("PipelineNotFoundException", `${m.name}: no such pipeline`))]),
    ) as unknown as ServiceImpl<typeof PipelineService>;
    impl.createPipeline = (req, ctx) => {
      created.push(`${ctx.principal.id}:${req.pipeline?.name ?? ""}`);
      const pipeline = create(PipelineDeclarationSchema, req.pipeline);
      pipeline.version = 1;
      return Promise.resolve({ pipeline, tags: req.tags });
    };
    const server = createServer({
      logger: noopLogger,
      auth: createTokenAuthenticator([{ principal: "ci", roles: ["operator"], token: "ci-token" }]),
      permissions: { CreatePipeline: ["operator"], GetPipeline: ["viewer", "operator"], ListApprovals: ["viewer"] },
    });
    server.add(PipelineService, impl);
    server.add(ApprovalService, { listApprovals: () => Promise.resolve({}), putApprovalResult: () => Promise.resolve({}), getApproval: () => Promise.resolve({}) });
    const port = await server.listen("127.0.0.1", 0);
    const client = createSluiceClient({ address: `127.0.0.1:${port}`, token: "ci-token", deadlineMs: 5000 });
    const approvals = createApprovalClient({ address: `127.0.0.1:${port}`, token: "ci-token" });
    try {
      const req = readPipelineJson(JSON.stringify({ name: "web", stages: [] }));
      const res = await client.pipelines.createPipeline(req);
      expect(res.pipeline?.version).toBe(1);
      expect(created).toEqual(["ci:web"]);
      const err = await client.pipelines.getPipeline({ name: "nope" }).catch((e: unknown) => e);
      expect(isRpcError(err, "PipelineNotFoundException")).toBe(true);
      const denied = await approvals.listApprovals({}).catch((e: unknown) => e);
      expect(isRpcError(denied, "AccessDeniedException")).toBe(true);
    } finally {
      client.close();
      approvals.close();
      await server.stop(1000);
    }
  });
});
