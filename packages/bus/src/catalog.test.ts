import { describe, expect, it } from "vitest";
import { DiscardPolicy, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";
import { controlSubject, createCatalog, eventSubject, jobSubject, partitionOf, resultSubject, sanitizeToken } from "./catalog.js";

describe("sanitizeToken", () => {
  it("replaces separators, wildcards and whitespace with _", () => {
    expect(sanitizeToken("my.pipe line*>\tx")).toBe("my_pipe_line___x");
    expect(sanitizeToken("")).toBe("_");
    expect(sanitizeToken("Build-1")).toBe("Build-1");
  });
});

describe("partitionOf", () => {
  it("is 32-bit FNV-1a of the UTF-8 name mod partitions", () => {
    // Reference values of FNV-1a 32: "" = 0x811c9dc5, "a" = 0xe40c292c, "foobar" = 0xbf9cf968.
    expect(partitionOf("", 1 << 30)).toBe(0x811c9dc5 % (1 << 30));
    expect(partitionOf("a", 1000)).toBe(0xe40c292c % 1000);
    expect(partitionOf("foobar", 97)).toBe(0xbf9cf968 % 97);
  });

  it("stays in range and is stable", () => {
    for (const name of ["p", "pipeline.with.dots", "ünïcode", "x".repeat(100)]) {
      const p = partitionOf(name, 8);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(8);
      expect(partitionOf(name, 8)).toBe(p);
    }
  });

  it("rejects a non-positive partition count, naming the field", () => {
    expect(() => partitionOf("p", 0)).toThrow(/partitions/);
  });
});

describe("createCatalog", () => {
  it("builds the default subjects", () => {
    expect(jobSubject("default", "Build", "Commands")).toBe("sluice.jobs.default.Build.Commands");
    expect(eventSubject("my.pipe", "stage")).toBe("sluice.events.my_pipe.stage");
    expect(resultSubject("demo", { runner: "default" })).toBe(`sluice.results.${partitionOf("demo", 8)}.runner.default`);
    expect(resultSubject("demo", "approval")).toBe(`sluice.results.${partitionOf("demo", 8)}.approval`);
  });

  it("prefixes stream names and subjects", () => {
    const c = createCatalog({ prefix: "t1", partitions: 4 });
    expect(c.streams).toEqual({
      jobs: "T1_SLUICE_JOBS",
      results: "T1_SLUICE_RESULTS",
      sources: "T1_SLUICE_SOURCES",
      events: "T1_SLUICE_EVENTS",
      dlq: "T1_SLUICE_DLQ",
      logs: "T1_SLUICE_LOGS",
    });
    expect(c.subjects.logSubject("a.b", "ae-1")).toBe("t1.sluice.logs.a_b.ae-1");
    expect(c.subjects.jobSubject("default", "Approval", "Manual")).toBe("t1.sluice.jobs.default.Approval.Manual");
    expect(c.subjects.sourceSubject("demo")).toBe(`t1.sluice.sources.${partitionOf("demo", 4)}`);
    expect(c.subjects.dlqSubject(c.streams.jobs)).toBe("t1.sluice.dlq.T1_SLUICE_JOBS");
    expect(c.subjects.eventFilter()).toBe("t1.sluice.events.>");
    expect(c.subjects.eventFilter("a.b")).toBe("t1.sluice.events.a_b.>");
    expect(c.subjects.resultPartitionSubject(3)).toBe("t1.sluice.results.3.>");
    expect(c.subjects.resultPublisherFilter({ runner: "gpu.x" })).toBe("t1.sluice.results.*.runner.gpu_x");
    expect(() => c.subjects.resultPartitionSubject(4)).toThrow(/partition/);
    // Control subjects are core NATS, outside every stream's wildcard.
    expect(c.subjects.controlSubject("cancel")).toBe("t1.sluice.control.cancel");
    expect(controlSubject("cancel")).toBe("sluice.control.cancel");
  });

  it("declares retention, storage, duplicate window and ages per stream", () => {
    const byKey = new Map(createCatalog().streamConfigs.map((d) => [d.key, d.config]));
    for (const key of ["jobs", "results", "sources"] as const) {
      expect(byKey.get(key)?.retention).toBe(RetentionPolicy.Workqueue);
    }
    expect(byKey.get("events")).toMatchObject({ retention: RetentionPolicy.Limits, max_age: nanos(7 * 86_400_000) });
    expect(byKey.get("dlq")).toMatchObject({ retention: RetentionPolicy.Limits, max_age: nanos(14 * 86_400_000) });
    // Log lines are kept for a day and at most 1 GiB, the oldest going first.
    expect(byKey.get("logs")).toMatchObject({
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_age: nanos(86_400_000),
      max_bytes: 1024 * 1024 * 1024,
      subjects: ["sluice.logs.>"],
    });
    for (const config of byKey.values()) {
      expect(config.storage).toBe(StorageType.File);
      expect(config.duplicate_window).toBe(nanos(120_000));
    }
    expect(byKey.get("jobs")?.subjects).toEqual(["sluice.jobs.>"]);
  });

  it("rejects a prefix that is not a single safe token", () => {
    expect(() => createCatalog({ prefix: "a.b" })).toThrow(/prefix/);
  });
});
