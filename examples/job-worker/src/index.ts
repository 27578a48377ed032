// An example job worker of a custom action type (CodePipeline's job-worker protocol over
// Sluice's JobService): the e2e tests import it, `main.ts` runs it.
export { handleJob, pollOnce, runWorker } from "./worker.js";
export type { Handled, JobClient, PolledJob, WorkOptions, WorkerActionType } from "./worker.js";
