// `npm start`: installs what is missing, builds, and runs packages/dev-cluster — the local
// cluster with the example pipeline — until Ctrl-C.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { build, ensureDependencies, ensureServers, root } from "./lib.mjs";

ensureDependencies();
ensureServers();
build();

const child = spawn(process.execPath, [join(root, "packages/dev-cluster/dist/bin.js")], { cwd: root, stdio: "inherit" });
// Ctrl-C reaches the child too (same process group); it shuts the cluster down, and we wait for it.
for (const s of ["SIGINT", "SIGTERM"]) process.on(s, () => {});
child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
