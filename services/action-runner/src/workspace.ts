import { lchown, mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import path from "node:path";

/**
 * The directory tree of one job, created under WORKSPACE_ROOT and removed when the job ends:
 *
 *     <root>/sluice-job-XXXXXX/
 *       src/      the working directory: primary input extracted here, commands run here
 *       inputs/   downloaded input zips
 *       outputs/  output zips before upload
 *       run/      the runner's own files (the script, the exported environment)
 *       home/     the job's HOME: nothing of the runner's home (~/.ssh, ~/.git-credentials) is seen
 *       tmp/      the job's TMPDIR, removed with the rest
 *
 * Only `src/` is visible to output globs, so the runner's files never leak into artifacts.
 */
export interface Workspace {
  readonly root: string;
  readonly src: string;
  readonly inputs: string;
  readonly outputs: string;
  readonly run: string;
  readonly home: string;
  readonly tmp: string;
  /** Deletes the whole tree; safe to call more than once. */
  remove(): Promise<void>;
}

/** Creates a fresh workspace under `workspaceRoot` (created if missing). */
export async function createWorkspace(workspaceRoot: string): Promise<Workspace> {
  await mkdir(workspaceRoot, { recursive: true });
  const root = await mkdtemp(path.join(workspaceRoot, "sluice-job-"));
  const ws: Workspace = {
    root,
    src: path.join(root, "src"),
    inputs: path.join(root, "inputs"),
    outputs: path.join(root, "outputs"),
    run: path.join(root, "run"),
    home: path.join(root, "home"),
    tmp: path.join(root, "tmp"),
    remove: () => rm(root, { recursive: true, force: true, maxRetries: 3 }),
  };
  try {
    await Promise.all([ws.src, ws.inputs, ws.outputs, ws.run, ws.home, ws.tmp].map((dir) => mkdir(dir, { mode: 0o700 })));
  } catch (err) {
    await ws.remove();
    throw err;
  }
  return ws;
}

/**
 * Runs `fn` in a fresh workspace and removes the workspace afterwards, whatever happens.
 */
export async function withWorkspace<T>(workspaceRoot: string, fn: (ws: Workspace) => Promise<T>): Promise<T> {
  const ws = await createWorkspace(workspaceRoot);
  try {
    return await fn(ws);
  } finally {
    await ws.remove();
  }
}

/**
 * Gives `dir` and everything below it to `uid`:`gid`. Symlinks are re-owned themselves, never
 * followed (lchown, and a symlink is not descended into), so a link in an extracted input cannot
 * hand a file outside the workspace to the job.
 */
export async function chownTree(dir: string, uid: number, gid: number): Promise<void> {
  await lchown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await lchown(child, uid, gid);
  }
}
