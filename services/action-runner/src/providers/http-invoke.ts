import { createHmac } from "node:crypto";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { EgressRefusedError, EgressTimeoutError, egressRequest } from "@sluice/service-kit";
import type { EgressPolicy } from "@sluice/service-kit";
import { FAILURE_CODES, JobFailure, abortable, requireConfig } from "./provider.js";
import type { FailureCode, Provider, ProviderContext, ProviderOutcome } from "./provider.js";

/**
 * `Invoke`/`Http`, Sluice's Lambda invoke: POSTs the job, shaped like the event AWS hands a
 * Lambda function (`{"CodePipeline.job": {id, data: {actionConfiguration, inputArtifacts}}}`), to
 * `configuration.Url` and turns the endpoint's answer into the action's result.
 *
 * The request is signed so the endpoint can tell it comes from this fleet and is fresh:
 * `X-Sluice-Signature-256: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the runner's
 * `HTTP_INVOKE_SECRET`, and `X-Sluice-Timestamp: <unix seconds>`. The body names the URL it was
 * sent to, so a request captured by one endpoint cannot be replayed to another. Outbound
 * targets follow the egress policy (`EGRESS_ALLOW`), as approvals' `NotificationUrl` does.
 *
 * The answer: a 2xx with an empty body succeeds; a 2xx with JSON
 * `{"status": "Succeeded"|"Failed", "summary", "externalExecutionId", "outputVariables",
 * "failureDetails": {"type", "message"}}` says which. Any other status fails the action with the
 * status and the start of the body. Redirects are not followed.
 */

/** What the runner signs with; without it Http jobs fail with a ConfigurationError. */
export interface HttpInvokeOptions {
  readonly secret: string | undefined;
  readonly egress: EgressPolicy;
  /** @default Date.now */
  readonly now?: () => number;
}

/** The signature header, `sha256=<hex>` over `"<timestamp>.<body>"`. */
export const SIGNATURE_HEADER = "X-Sluice-Signature-256";
export const TIMESTAMP_HEADER = "X-Sluice-Timestamp";

/** How the endpoint's answer is read; bigger answers are refused (an output variable map fits). */
const MAX_ANSWER_BYTES = 256 * 1024;
/** At most this long per request when the job's deadline is further away. */
const MAX_REQUEST_MS = 15 * 60_000;

/** `sha256=<hex>`: what an endpoint recomputes with the shared secret to verify a request. */
export function signHttpInvoke(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

export function createHttpInvokeProvider(opts: HttpInvokeOptions): Provider {
  const now = opts.now ?? Date.now;
  return async (ctx) => {
    const url = requireConfig(ctx.job, "Url");
    checkUrl(url);
    if (opts.secret === undefined) {
      throw new JobFailure("ConfigurationError", "this runner has no HTTP_INVOKE_SECRET to sign Http invoke requests with");
    }
    const body = JSON.stringify(invokeEvent(ctx, url));
    const timestamp = String(Math.floor(now() / 1000));
    const deadline = ctx.job.deadline === undefined ? undefined : timestampDate(ctx.job.deadline).getTime();
    const timeoutMs = Math.max(1_000, Math.min(MAX_REQUEST_MS, (deadline ?? Infinity) - now()));
    let answer;
    try {
      answer = await abortable(
        egressRequest(opts.egress, url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            "User-Agent": "sluice-action-runner",
            [SIGNATURE_HEADER]: signHttpInvoke(opts.secret, timestamp, body),
            [TIMESTAMP_HEADER]: timestamp,
            "X-Sluice-Job-Id": ctx.job.jobId,
          },
          body,
          timeoutMs,
          maxResponseBytes: MAX_ANSWER_BYTES,
        }),
        ctx.signal,
      );
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (err instanceof EgressRefusedError) {
        throw new JobFailure("PermissionError", `configuration.Url: refused by the egress policy: ${err.message} (EGRESS_ALLOW can open it)`);
      }
      if (err instanceof EgressTimeoutError) throw new JobFailure("JobFailed", `the endpoint did not answer: ${err.message}`);
      throw new JobFailure("SystemUnavailable", `the endpoint could not be reached: ${err instanceof Error ? err.message : String(err)}`);
    }
    const text = answer.body.toString("utf8");
    if (answer.status < 200 || answer.status > 299) {
      throw new JobFailure("JobFailed", `the endpoint answered HTTP ${answer.status}${text.trim() === "" ? "" : `: ${text.slice(0, 200)}`}`);
    }
    if (answer.status === 202) {
      // As a Lambda that returns before the work is done: the endpoint answers later with
      // PutJobSuccessResult/PutJobFailureResult for the job id it was sent.
      return { summary: `accepted by the endpoint (HTTP 202); waiting for its answer through JobService for job ${ctx.job.jobId}`, outputs: [], answeredLater: true };
    }
    if (answer.truncated) throw new JobFailure("JobFailed", `the endpoint's answer is longer than ${MAX_ANSWER_BYTES} bytes`);
    return readAnswer(text);
  };
}

function checkUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new JobFailure("ConfigurationError", "configuration.Url: is not an absolute URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new JobFailure("ConfigurationError", `configuration.Url: must be an http:// or https:// URL, got "${parsed.protocol}"`);
  }
  if (parsed.username !== "" || parsed.password !== "") {
    throw new JobFailure("ConfigurationError", "configuration.Url: must not carry credentials (user:password@)");
  }
}

/** AWS's Lambda event for CodePipeline, with presigned GETs where AWS gives S3 locations and credentials. */
function invokeEvent(ctx: ProviderContext, url: string): unknown {
  const { job } = ctx;
  return {
    url,
    "CodePipeline.job": {
      id: job.jobId,
      accountId: "sluice",
      data: {
        actionConfiguration: { configuration: { ...job.configuration } },
        pipelineContext: {
          pipelineName: job.pipelineName,
          pipelineExecutionId: job.pipelineExecutionId,
          stage: { name: job.stageName },
          action: { name: job.actionName, actionExecutionId: job.actionExecutionId },
        },
        inputArtifacts: job.inputs.map((input) => ({
          name: input.name,
          revision: null,
          location: {
            type: "S3",
            s3Location: { bucketName: input.grant?.bucket ?? "", objectKey: input.grant?.key ?? "" },
            url: input.grant?.url ?? "",
            sha256: input.sha256,
          },
        })),
        outputArtifacts: [],
      },
    },
  };
}

const ANSWER_KEYS = new Set(["status", "summary", "externalExecutionId", "outputVariables", "failureDetails"]);

function readAnswer(text: string): ProviderOutcome {
  if (text.trim() === "") return { outputs: [] };
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new JobFailure("JobFailed", "the endpoint's answer is not JSON");
  }
  if (typeof answer !== "object" || answer === null || Array.isArray(answer)) throw new JobFailure("JobFailed", "the endpoint's answer must be a JSON object");
  const fields = answer as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((k) => !ANSWER_KEYS.has(k));
  if (unknown.length > 0) throw new JobFailure("JobFailed", `the endpoint's answer has unknown fields: ${unknown.join(", ")}`);
  const stringField = (key: string, value: unknown): string | undefined => {
    if (value === undefined || value === null) return undefined;
    if (typeof value !== "string") throw new JobFailure("JobFailed", `the endpoint's answer: ${key} must be a string`);
    return value;
  };
  const summary = stringField("summary", fields["summary"]);
  const externalExecutionId = stringField("externalExecutionId", fields["externalExecutionId"]);
  const status = stringField("status", fields["status"]) ?? "Succeeded";
  if (status === "Failed") {
    const details = fields["failureDetails"];
    const detail = typeof details === "object" && details !== null ? (details as Record<string, unknown>) : {};
    const type = stringField("failureDetails.type", detail["type"]) ?? "JobFailed";
    const code: FailureCode = (FAILURE_CODES as readonly string[]).includes(type) ? (type as FailureCode) : "JobFailed";
    throw new JobFailure(code, stringField("failureDetails.message", detail["message"]) ?? summary ?? "the endpoint reported a failure", summary);
  }
  if (status !== "Succeeded") throw new JobFailure("JobFailed", `the endpoint's answer: status must be "Succeeded" or "Failed", got "${status}"`);
  const variables = fields["outputVariables"] ?? {};
  if (typeof variables !== "object" || variables === null || Array.isArray(variables)) {
    throw new JobFailure("JobFailed", "the endpoint's answer: outputVariables must be an object of strings");
  }
  const outputVariables: Record<string, string> = {};
  for (const [key, value] of Object.entries(variables)) {
    if (typeof value !== "string") throw new JobFailure("JobFailed", `the endpoint's answer: outputVariables.${key} must be a string`);
    outputVariables[key] = value;
  }
  return {
    outputs: [],
    outputVariables,
    ...(summary === undefined ? {} : { summary }),
    ...(externalExecutionId === undefined ? {} : { externalExecutionId }),
  };
}
