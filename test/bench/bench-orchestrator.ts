// The orchestrator the benchmarks run in their own process: no approval or artifact service,
// one admin token.
import { startOrchestrator } from "@sluice/orchestrator";
import type { Orchestrator } from "@sluice/orchestrator";

export function startBenchOrchestrator(o: { natsUrl: string; mongoUrl: string; prefix: string; token: string }): Promise<Orchestrator> {
  return startOrchestrator({
    natsUrl: o.natsUrl,
    mongoUrl: o.mongoUrl,
    mongoDb: `${o.prefix}_orchestrator`,
    grpcHost: "127.0.0.1",
    grpcPort: 0,
    authTokens: `bench=admin:${o.token}`,
    logLevel: "warn",
    shutdownGraceMs: 5000,
    busPrefix: o.prefix,
    approvalAddr: "",
    artifactAddr: "",
    serviceToken: "",
    defaultArtifactBucket: "sluice-artifacts",
    outboxSweepMs: 2000,
    timerSweepMs: 1000,
    watchMaxPerPrincipal: 16,
    watchMaxTotal: 256,
  });
}
