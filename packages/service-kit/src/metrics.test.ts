import { afterAll, describe, expect, it } from "vitest";
import { metrics } from "@opentelemetry/api";
import { DataPointType, MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import type { Histogram, MetricData } from "@opentelemetry/sdk-metrics";
import { METRIC_NAMES, createMetrics, elapsedMs } from "./metrics.js";

/** A pull reader: `collect()` on demand. */
class TestMetricReader extends MetricReader {
  protected onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

async function collect(reader: TestMetricReader): Promise<Map<string, MetricData>> {
  const { resourceMetrics } = await reader.collect();
  return new Map(resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).map((m) => [m.descriptor.name, m]));
}

describe("createMetrics", () => {
  // Created before any provider is registered, as a service module might at import time.
  const m = createMetrics("@sluice/test", "0.1.0");
  const reader = new TestMetricReader();
  const provider = new MeterProvider({ readers: [reader] });

  afterAll(async () => {
    await provider.shutdown();
    metrics.disable();
  });

  it("drops values while no provider is registered, then records into the one registered later", async () => {
    m.executions.add(1, { status: "Failed" }); // no provider yet: dropped, not thrown
    metrics.setGlobalMeterProvider(provider);
    m.executions.add(1, { status: "Succeeded", pipeline: "web" });
    m.executions.add(1, { status: "Succeeded", pipeline: "web" });
    m.actionDuration.record(1500, { provider: "Commands", status: "Succeeded", category: "Build" });
    m.actionDuration.record(Number.NaN, { provider: "Commands", status: "Failed" }); // dropped
    m.dispatchLatency.record(12, { provider: "Commands", pool: "default" });
    m.dlqMessages.add(1, { stream: "SLUICE_JOBS" });

    const got = await collect(reader);
    const executions = got.get(METRIC_NAMES.executions);
    expect(executions?.dataPointType).toBe(DataPointType.SUM);
    expect(executions?.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value }))).toEqual([
      { attributes: { status: "Succeeded", pipeline: "web" }, value: 2 },
    ]);
    const duration = got.get(METRIC_NAMES.actionDuration);
    expect(duration?.descriptor.unit).toBe("ms");
    expect(duration?.dataPoints).toHaveLength(1);
    const point = duration?.dataPoints[0];
    expect(point?.attributes).toEqual({ provider: "Commands", status: "Succeeded", category: "Build" });
    expect((point?.value as Histogram | undefined)?.sum).toBe(1500);
    // The advised buckets suit minutes-long actions, not the SDK's default 0–10 s.
    expect((point?.value as Histogram | undefined)?.buckets.boundaries).toContain(3_600_000);
    expect(got.get(METRIC_NAMES.dispatchLatency)?.dataPoints[0]?.attributes).toEqual({ provider: "Commands", pool: "default" });
    expect(got.get(METRIC_NAMES.dlqMessages)?.dataPoints[0]).toMatchObject({ attributes: { stream: "SLUICE_JOBS" }, value: 1 });
  });

  it("counts stale results and reports queued jobs by pool at each collection", async () => {
    // The provider registered by the test above.
    m.staleResults.add(1, { pool: "gpu" });
    let pools = [{ pool: "gpu", count: 2, oldestAgeSeconds: 75 }];
    const stop = m.observeQueuedJobs(() => pools);
    let got = await collect(reader);
    expect(got.get(METRIC_NAMES.staleResults)?.dataPoints[0]).toMatchObject({ attributes: { pool: "gpu" }, value: 1 });
    expect(got.get(METRIC_NAMES.jobsQueued)?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ pool: "gpu" }, 2]]);
    expect(got.get(METRIC_NAMES.jobsQueuedOldestAge)?.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ pool: "gpu" }, 75]]);
    pools = [{ pool: "gpu", count: 0, oldestAgeSeconds: 0 }];
    got = await collect(reader);
    expect(got.get(METRIC_NAMES.jobsQueued)?.dataPoints.map((p) => p.value)).toEqual([0]);
    stop();
  });
});

describe("elapsedMs", () => {
  it("measures from a publish time, clamps clock skew at 0 and passes on an unknown start", () => {
    const now = new Date("2026-03-01T10:00:01.250Z");
    expect(elapsedMs(new Date("2026-03-01T10:00:00Z"), now)).toBe(1250);
    expect(elapsedMs(new Date("2026-03-01T10:00:02Z"), now)).toBe(0);
    expect(elapsedMs(undefined, now)).toBeUndefined();
    expect(elapsedMs(new Date(Number.NaN), now)).toBeUndefined();
  });
});
