/**
 * Which buckets ObjectStore deploy actions of which pipelines may write: the `DEPLOY_BUCKETS`
 * variable. Nothing is allowed by default, so a pipeline author cannot write an arbitrary
 * bucket of the store (another team's site, or an artifact bucket) through a deploy action.
 *
 * Grammar: `rule(,rule)*`, `rule = pipeline=bucket(+bucket)*`, where `pipeline` is a pipeline
 * name or `*` (every pipeline) and `bucket` is an S3 bucket name, or a bucket-name prefix
 * followed by `*` (`public-*`). Spaces around items are ignored; an empty value allows nothing.
 * Example: `pipelineA=site-a+site-b,*=public-*`.
 */

import { BUCKET_NAME_PATTERN, PIPELINE_NAME_PATTERN } from "@sluice/domain";

/** One pipeline's (or every pipeline's) allowed bucket names and prefixes. */
interface DeployBucketRule {
  readonly pipeline: string;
  readonly exact: ReadonlySet<string>;
  readonly prefixes: readonly string[];
}

/** The parsed allow-list. */
export interface DeployBuckets {
  allows(pipelineName: string, bucket: string): boolean;
  /** The rules as configured, for error messages (no secrets in them). */
  readonly spec: string;
}

/** What may precede `*`: the start of a bucket name (possibly empty, for "any bucket"). */
const BUCKET_PREFIX_PATTERN = /^([a-z0-9][a-z0-9.-]{0,61})?$/;

/** Parses `DEPLOY_BUCKETS`; throws an Error describing the first bad rule. */
export function parseDeployBuckets(spec: string): DeployBuckets {
  const rules: DeployBucketRule[] = [];
  const items = spec.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const item of items) {
    const eq = item.indexOf("=");
    if (eq < 0) throw new Error(`"${item}" must be <pipeline>=<bucket>[+<bucket>…]`);
    const pipeline = item.slice(0, eq).trim();
    if (pipeline !== "*" && !PIPELINE_NAME_PATTERN.test(pipeline)) {
      throw new Error(`"${item}": "${pipeline}" is neither a pipeline name nor *`);
    }
    const buckets = item.slice(eq + 1).split("+").map((s) => s.trim());
    const exact = new Set<string>();
    const prefixes: string[] = [];
    for (const bucket of buckets) {
      if (bucket.endsWith("*")) {
        const prefix = bucket.slice(0, -1);
        if (!BUCKET_PREFIX_PATTERN.test(prefix) || prefix.includes("..")) {
          throw new Error(`"${item}": "${bucket}" is not a bucket-name prefix followed by * (e.g. public-*)`);
        }
        prefixes.push(prefix);
      } else {
        if (!BUCKET_NAME_PATTERN.test(bucket) || bucket.includes("..")) {
          throw new Error(`"${item}": "${bucket}" is not an S3 bucket name (3-63 of a-z 0-9 . -)`);
        }
        exact.add(bucket);
      }
    }
    rules.push({ pipeline, exact, prefixes });
  }
  return {
    spec: items.join(","),
    allows(pipelineName, bucket) {
      return rules.some(
        (r) => (r.pipeline === "*" || r.pipeline === pipelineName) && (r.exact.has(bucket) || r.prefixes.some((p) => bucket.startsWith(p))),
      );
    },
  };
}
