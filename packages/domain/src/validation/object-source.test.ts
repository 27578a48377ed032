import { describe, expect, it } from "vitest";
import { edited, configOf, typeOf } from "./test-fixtures.js";
import type { PipelineJson } from "./test-fixtures.js";
import { OBJECT_SOURCE_OUTPUT_VARIABLES, isObjectSource, objectSourceOf, resolveProvider } from "./providers.js";
import { validatePipeline } from "./validate.js";

/** The base pipeline with its Git source turned into an S3 (or ObjectStore) source. */
function withObjectSource(provider: "S3" | "ObjectStore", configuration: Record<string, string>): (json: PipelineJson) => void {
  return (json) => {
    Object.assign(typeOf(json, 0, 0), { category: "Source", owner: "AWS", provider, version: "1" });
    const config = configOf(json, 0, 0);
    for (const key of Object.keys(config)) delete config[key];
    Object.assign(config, configuration);
    // The base pipeline's build reads the Git source's CommitId; an object source has VersionId.
    for (const variable of json.stages?.[1]?.actions?.[0]?.environmentVariables ?? []) variable.value = "#{SourceVariables.VersionId}";
  };
}

describe("ObjectStore source", () => {
  it("AWS's S3 source runs as the ObjectStore source with ETag and VersionId variables", () => {
    for (const provider of ["S3", "ObjectStore"]) {
      const spec = resolveProvider({ category: "Source", owner: "AWS", provider, version: "1" });
      expect(spec?.builtIn).toBe("ObjectStore");
      expect(isObjectSource(spec)).toBe(true);
      expect(spec?.outputVariables).toEqual(OBJECT_SOURCE_OUTPUT_VARIABLES);
      expect(spec?.requiredConfiguration).toEqual(["S3Bucket", "S3ObjectKey"]);
    }
    expect(isObjectSource(resolveProvider({ category: "Deploy", owner: "AWS", provider: "S3", version: "1" }))).toBe(false);
  });

  it("accepts AWS's configuration keys", () => {
    const json = edited(withObjectSource("S3", { S3Bucket: "sources", S3ObjectKey: "app/source.zip", PollForSourceChanges: "false" }));
    expect(validatePipeline(json)).toEqual([]);
  });

  it("names the missing and malformed fields", () => {
    const field = "pipeline.stages[0].actions[0].configuration";
    expect(validatePipeline(edited(withObjectSource("S3", {})))).toEqual([
      { field: `${field}.S3Bucket`, message: "is required by Source/S3" },
      { field: `${field}.S3ObjectKey`, message: "is required by Source/S3" },
    ]);
    const bad = validatePipeline(
      edited(withObjectSource("ObjectStore", { S3Bucket: "Bad_Bucket", S3ObjectKey: "/source.zip", PollForSourceChanges: "yes", BucketName: "x" })),
    );
    expect(bad.map((v) => v.field)).toEqual([`${field}.S3Bucket`, `${field}.S3ObjectKey`, `${field}.PollForSourceChanges`, `${field}.BucketName`]);
    expect(bad[1]?.message).toMatch(/must not start with/);
  });

  it("objectSourceOf reads bucket, key and polling (default true)", () => {
    expect(objectSourceOf({ S3Bucket: "b", S3ObjectKey: "k.zip" })).toEqual({ bucket: "b", objectKey: "k.zip", poll: true });
    expect(objectSourceOf({ S3Bucket: "b", S3ObjectKey: "k.zip", PollForSourceChanges: "false" }).poll).toBe(false);
  });
});
