import { createServer } from "node:http";
import type { IncomingHttpHeaders, Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { GrantSchema, InputGrantSchema } from "@sluice/proto";
import { createEgressPolicy, parseEgressAllow } from "@sluice/service-kit";
import type { EgressPolicy } from "@sluice/service-kit";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { makeJob, providerContext, tempDir } from "../../test/helpers.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, createHttpInvokeProvider, signHttpInvoke } from "./http-invoke.js";
import { JobFailure } from "./provider.js";
import type { ProviderOutcome } from "./provider.js";

const SECRET = "0123456789abcdef0123456789abcdef-signing";

describe("Http invoke provider", () => {
  let server: Server;
  let url: string;
  let received: { headers: IncomingHttpHeaders; body: string }[] = [];
  /** What the endpoint answers next. */
  let answer: { status: number; body: string } = { status: 200, body: "" };
  let root: { dir: string; remove: () => Promise<void> };
  const loopbackAllowed = createEgressPolicy({ allow: parseEgressAllow("127.0.0.1") });

  beforeAll(async () => {
    root = await tempDir("sluice-http-invoke-");
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        res.writeHead(answer.status, { "Content-Type": "application/json" }).end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    await root.remove();
  });
  beforeEach(() => {
    received = [];
    answer = { status: 200, body: "" };
  });

  const invokeJob = (configuration: Record<string, string>) =>
    makeJob({
      actionTypeId: { category: "Invoke", owner: "AWS", provider: "Http", version: "1" },
      configuration,
      inputs: [
        create(InputGrantSchema, {
          name: "BuildOutput",
          artifactId: "ae/BuildOutput",
          sha256: "ab".repeat(32),
          grant: create(GrantSchema, { url: "http://minio.invalid/signed", method: "GET", bucket: "artifacts", key: "p/ae/BuildOutput.zip" }),
        }),
      ],
    });

  async function invoke(configuration: Record<string, string>, opts: { secret?: string | undefined; egress?: EgressPolicy } = { secret: SECRET }): Promise<ProviderOutcome> {
    const { ctx } = await providerContext(invokeJob(configuration), { root: root.dir });
    return createHttpInvokeProvider({ secret: opts.secret, egress: opts.egress ?? loopbackAllowed, now: () => 1_700_000_000_000 })(ctx);
  }

  async function failure(run: Promise<unknown>): Promise<JobFailure> {
    const err = await run.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(JobFailure);
    return err as JobFailure;
  }

  it("POSTs AWS's job event with a signature the endpoint can verify over timestamp and body", async () => {
    await invoke({ Url: url, UserParameters: "deploy blue" });
    expect(received).toHaveLength(1);
    const [request] = received;
    const timestamp = request?.headers[TIMESTAMP_HEADER.toLowerCase()];
    expect(timestamp).toBe("1700000000");
    expect(request?.headers[SIGNATURE_HEADER.toLowerCase()]).toBe(signHttpInvoke(SECRET, "1700000000", request?.body ?? ""));
    expect(request?.headers[SIGNATURE_HEADER.toLowerCase()]).not.toBe(signHttpInvoke("another key of the same length......", "1700000000", request?.body ?? ""));
    const event = JSON.parse(request?.body ?? "{}") as Record<string, unknown>;
    expect(event["url"]).toBe(url);
    expect(event["CodePipeline.job"]).toMatchObject({
      data: {
        actionConfiguration: { configuration: { Url: url, UserParameters: "deploy blue" } },
        pipelineContext: { pipelineName: "runner-test", stage: { name: "Build" }, action: { name: "Run" } },
        inputArtifacts: [{ name: "BuildOutput", location: { type: "S3", s3Location: { bucketName: "artifacts", objectKey: "p/ae/BuildOutput.zip" }, url: "http://minio.invalid/signed" } }],
        outputArtifacts: [],
      },
    });
  });

  it("turns a JSON success into summary, external id and output variables", async () => {
    answer = { status: 200, body: JSON.stringify({ status: "Succeeded", summary: "deployed", externalExecutionId: "run-7", outputVariables: { Version: "42" } }) };
    const outcome = await invoke({ Url: url });
    expect(outcome).toEqual({ outputs: [], summary: "deployed", externalExecutionId: "run-7", outputVariables: { Version: "42" } });
  });

  it("takes a 202 as accepted: the answer comes later through JobService", async () => {
    answer = { status: 202, body: "" };
    const outcome = await invoke({ Url: url });
    expect(outcome).toMatchObject({ answeredLater: true, outputs: [] });
    expect(outcome.summary).toMatch(/waiting for its answer through JobService for job /);
  });

  it("reports the endpoint's failure with its failure type", async () => {
    answer = { status: 200, body: JSON.stringify({ status: "Failed", failureDetails: { type: "ConfigurationError", message: "no such target" } }) };
    const err = await failure(invoke({ Url: url }));
    expect(err.code).toBe("ConfigurationError");
    expect(err.message).toBe("no such target");
  });

  it("fails on a non-2xx status, naming it, and on an answer that is not the expected JSON", async () => {
    answer = { status: 503, body: "busy" };
    expect((await failure(invoke({ Url: url }))).message).toBe("the endpoint answered HTTP 503: busy");
    answer = { status: 200, body: "<html>" };
    expect((await failure(invoke({ Url: url }))).message).toBe("the endpoint's answer is not JSON");
    answer = { status: 200, body: JSON.stringify({ status: "Succeeded", outputVariables: { N: 1 } }) };
    expect((await failure(invoke({ Url: url }))).message).toBe("the endpoint's answer: outputVariables.N must be a string");
    answer = { status: 200, body: JSON.stringify({ state: "ok" }) };
    expect((await failure(invoke({ Url: url }))).message).toBe("the endpoint's answer has unknown fields: state");
  });

  it("refuses loopback unless EGRESS_ALLOW opens it, and sends nothing", async () => {
    const err = await failure(invoke({ Url: url }, { secret: SECRET, egress: createEgressPolicy() }));
    expect(err.code).toBe("PermissionError");
    expect(err.message).toMatch(/^configuration\.Url: refused by the egress policy: 127\.0\.0\.1 is a loopback address/);
    expect(received).toHaveLength(0);
  });

  it("fails without a signing key, and for a URL with credentials, before sending", async () => {
    expect((await failure(invoke({ Url: url }, { secret: undefined }))).message).toBe("this runner has no HTTP_INVOKE_SECRET to sign Http invoke requests with");
    const withUser = url.replace("http://", "http://user:pw@");
    expect((await failure(invoke({ Url: withUser }))).message).toBe("configuration.Url: must not carry credentials (user:password@)");
    expect(received).toHaveLength(0);
  });
});
