// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadApprovalConfig } from "./config.js";
import { startApprovalService } from "./service.js";

await runMain({ service: "approval", env: process.env, loadConfig: loadApprovalConfig, start: startApprovalService });
