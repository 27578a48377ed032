// The composition root: the only file that reads the environment and touches the process.
import { runMain } from "@sluice/service-kit";
import { loadArtifactConfig } from "./config.js";
import { startArtifactService } from "./service.js";

await runMain({ service: "artifact", env: process.env, loadConfig: loadArtifactConfig, start: startArtifactService });
