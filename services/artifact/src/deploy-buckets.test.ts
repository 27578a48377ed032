import { describe, expect, it } from "vitest";
import { parseDeployBuckets } from "./deploy-buckets.js";

describe("DEPLOY_BUCKETS", () => {
  it("allows nothing when empty", () => {
    expect(parseDeployBuckets("").allows("example", "sluice-example-site")).toBe(false);
  });

  it("allows listed buckets for the named pipeline and prefixes for every pipeline", () => {
    const rules = parseDeployBuckets(" pipelineA = site-a+site-b , *=public-* ");
    expect(rules.allows("pipelineA", "site-a")).toBe(true);
    expect(rules.allows("pipelineA", "site-b")).toBe(true);
    expect(rules.allows("pipelineB", "site-a")).toBe(false);
    expect(rules.allows("pipelineB", "public-docs")).toBe(true);
    expect(rules.allows("pipelineA", "private-docs")).toBe(false);
    // A prefix is not a substring match.
    expect(rules.allows("pipelineB", "x-public-docs")).toBe(false);
  });

  it("refuses malformed rules, naming the rule", () => {
    expect(() => parseDeployBuckets("site-a")).toThrow(/"site-a" must be <pipeline>=<bucket>/);
    expect(() => parseDeployBuckets("p=Site_A")).toThrow(/"Site_A" is not an S3 bucket name/);
    expect(() => parseDeployBuckets("p=a..b")).toThrow(/not an S3 bucket name/);
    expect(() => parseDeployBuckets("p=")).toThrow(/not an S3 bucket name/);
    expect(() => parseDeployBuckets("p/q=site-a")).toThrow(/neither a pipeline name nor \*/);
    expect(() => parseDeployBuckets("p=pub*lic")).toThrow(/not an S3 bucket name/);
    expect(() => parseDeployBuckets("p=-x*")).toThrow(/bucket-name prefix/);
  });
});
