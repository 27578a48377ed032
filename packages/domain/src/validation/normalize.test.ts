import { create, equals } from "@bufbuild/protobuf";
import { PipelineDeclarationSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { DomainError } from "../errors.js";
import { MAX_DECLARATION_BYTES } from "../limits.js";
import {
  DEFAULT_ARTIFACT_BUCKET,
  assertValidPipeline,
  checkDeclarationSize,
  declarationSizeBytes,
  normalizePipeline,
} from "./normalize.js";
import { AWS_PIPELINE_JSON, actionOf, basePipelineJson, configOf, edited, itemOf, parse } from "./test-fixtures.js";

describe("normalizePipeline", () => {
  it("fills runOrder 1, SUPERSEDED, V1, version 1, PLAINTEXT and the default artifact store", () => {
    const decl = edited((j) => {
      delete j.artifactStore;
      delete itemOf(actionOf(j, 1, 0).environmentVariables, 0).type;
    });
    const out = normalizePipeline(decl, "team-artifacts");
    expect(out.version).toBe(1);
    expect(out.executionMode).toBe("SUPERSEDED");
    expect(out.pipelineType).toBe("V1");
    expect(out.artifactStore).toMatchObject({ type: "S3", location: "team-artifacts" });
    expect(out.stages.flatMap((s) => s.actions.map((a) => a.runOrder))).toEqual([1, 1, 2, 1, 1]);
    expect(out.stages[1]?.actions[0]?.environmentVariables[0]?.type).toBe("PLAINTEXT");
  });

  it("uses sluice-artifacts when no default bucket is given", () => {
    const out = normalizePipeline(edited((j) => delete j.artifactStore));
    expect(out.artifactStore?.location).toBe(DEFAULT_ARTIFACT_BUCKET);
    expect(DEFAULT_ARTIFACT_BUCKET).toBe("sluice-artifacts");
  });

  it("keeps what the declaration sets, including artifactStores and configuration", () => {
    const aws = parse(AWS_PIPELINE_JSON);
    const out = normalizePipeline(aws);
    expect(equals(PipelineDeclarationSchema, out, aws)).toBe(true);

    const multi = edited((j) => {
      delete j.artifactStore;
      j.artifactStores = { "us-east-1": { location: "artifacts-east" } };
      j.executionMode = "QUEUED";
      j.pipelineType = "V2";
      j.version = 7;
    });
    const normalized = normalizePipeline(multi);
    expect(normalized.artifactStore).toBeUndefined();
    expect(normalized.artifactStores["us-east-1"]).toMatchObject({ type: "S3", location: "artifacts-east" });
    expect([normalized.executionMode, normalized.pipelineType, normalized.version]).toEqual(["QUEUED", "V2", 7]);
    expect(normalized.stages[0]?.actions[0]?.configuration).toEqual({ RepositoryUrl: "file:///srv/git/web.git", BranchName: "main" });
  });

  it("does not change its input and is idempotent", () => {
    const decl = edited((j) => delete j.artifactStore);
    const before = create(PipelineDeclarationSchema, decl);
    const once = normalizePipeline(decl);
    expect(equals(PipelineDeclarationSchema, decl, before)).toBe(true);
    expect(equals(PipelineDeclarationSchema, normalizePipeline(once), once)).toBe(true);
  });

  it("never throws on an empty declaration", () => {
    const out = normalizePipeline(create(PipelineDeclarationSchema));
    expect(out.stages).toEqual([]);
    expect(out.artifactStore?.location).toBe(DEFAULT_ARTIFACT_BUCKET);
  });
});

describe("assertValidPipeline", () => {
  it("returns for a valid declaration", () => {
    expect(() => assertValidPipeline(parse(basePipelineJson()))).not.toThrow();
  });

  it("throws InvalidStructureException listing every violation with its field", () => {
    const decl = edited((j) => {
      j.name = "";
      actionOf(j, 1, 0).inputArtifacts = [{ name: "BuildOut" }];
    });
    let caught: unknown;
    try {
      assertValidPipeline(decl);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DomainError);
    const error = caught as DomainError;
    expect(error.code).toBe("InvalidStructureException");
    expect(error.violations).toEqual([
      { field: "pipeline.name", message: "is required" },
      { field: "pipeline.stages[1].actions[0].inputArtifacts[0].name", message: '"BuildOut" is not produced by an earlier action' },
    ]);
    expect(error.message).toBe(
      'pipeline.name: is required; pipeline.stages[1].actions[0].inputArtifacts[0].name: "BuildOut" is not produced by an earlier action',
    );
  });
});

describe("declaration size", () => {
  it("accepts a declaration of exactly 256 KiB", () => {
    expect(MAX_DECLARATION_BYTES).toBe(262_144);
    expect(() => checkDeclarationSize(MAX_DECLARATION_BYTES)).not.toThrow();
  });

  it("rejects a larger one with LimitExceededException naming the size", () => {
    expect(() => checkDeclarationSize(MAX_DECLARATION_BYTES + 1)).toThrow(
      expect.objectContaining({
        code: "LimitExceededException",
        violations: [{ field: "pipeline", message: "the declaration is 262145 bytes; the limit is 262144 bytes" }],
      }),
    );
  });

  it("measures a declaration by its JSON form in UTF-8", () => {
    const decl = edited((j) => (configOf(j, 2, 0).CustomData = "é".repeat(10)));
    const plain = edited((j) => (configOf(j, 2, 0).CustomData = "e".repeat(10)));
    expect(declarationSizeBytes(decl) - declarationSizeBytes(plain)).toBe(10);
    expect(declarationSizeBytes(plain)).toBeGreaterThan(1000);
  });
});
