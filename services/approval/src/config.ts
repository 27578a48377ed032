import { z } from "zod";
import { parseTokenTable } from "@sluice/grpc";
import type { TokenEntry } from "@sluice/grpc";
import { commonConfig, commonEnv, durationMs, loadConfig } from "@sluice/service-kit";
import type { CommonConfig } from "@sluice/service-kit";

/** The approval service's environment, one comment per variable. */
export const approvalEnv = z.object({
  ...commonEnv,
  SLUICE_AUTH_TOKENS: commonEnv.SLUICE_AUTH_TOKENS.transform(tokenTable),
  /** Database of approvals and their audit. */
  MONGO_DB: z.string().min(1).default("sluice_approvals"),
  /** How often decided approvals whose result did not reach the bus are re-published (500, 5s, 1m). */
  APPROVAL_SWEEP_MS: durationMs()
    .refine((n) => n >= 10, { message: "must be at least 10 ms" })
    .default(5_000),
  /** Base URL of a console showing pipelines: links in approval notifications (unset: links are empty). */
  APPROVAL_CONSOLE_URL: z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" }).optional(),
  /** The `region` field of approval notifications (Sluice has one region; AWS's message names it). */
  APPROVAL_REGION: z.string().min(1).max(30).default("local"),
});

/** The resolved configuration `startApprovalService` takes. */
export interface ApprovalConfig extends CommonConfig<readonly TokenEntry[]> {
  mongoDb: string;
  sweepMs: number;
  /** APPROVAL_CONSOLE_URL. */
  consoleUrl?: string | undefined;
  /** APPROVAL_REGION. */
  region?: string | undefined;
}

/** Parses the environment; throws a ConfigError naming every bad variable. */
export function loadApprovalConfig(env: Record<string, string | undefined>): ApprovalConfig {
  const e = loadConfig(approvalEnv, env);
  return {
    ...commonConfig(e),
    mongoDb: e.MONGO_DB,
    sweepMs: e.APPROVAL_SWEEP_MS,
    consoleUrl: e.APPROVAL_CONSOLE_URL,
    region: e.APPROVAL_REGION,
  };
}

function tokenTable(spec: string, ctx: z.RefinementCtx): TokenEntry[] {
  try {
    return parseTokenTable(spec);
  } catch (err) {
    ctx.addIssue({ code: "custom", message: err instanceof Error ? err.message : String(err) });
    return z.NEVER;
  }
}
