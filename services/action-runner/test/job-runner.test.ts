// The job runner against a real MinIO: inputs downloaded through presigned GET grants,
// outputs uploaded through presigned PUT grants, exactly as the artifact service issues them.
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { extractZip, zipDirectory } from "@sluice/artifacts";
import { noopLogger } from "@sluice/domain";
import { create } from "@bufbuild/protobuf";
import { GrantSchema, OutputGrantSchema as OutputGrantMessage } from "@sluice/proto";
import type { InputGrantSchema, OutputGrant, OutputGrantSchema } from "@sluice/proto";
import type {} from "@sluice/testkit";
import { Client } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { JobCancelledError, createJobRunner } from "../src/job-runner.js";
import type { ArtifactCommitter, OutputGrantRenewer } from "../src/job-runner.js";
import { isProcessAlive } from "../src/process.js";
import { createProviderTable } from "../src/providers/table.js";
import { BASE_ENV, commitAll, git, makeJob, tempDir } from "./helpers.js";

describe("job runner", () => {
  const { s3 } = inject("servers");
  const client = new Client({ endPoint: s3.endPoint, port: s3.port, useSSL: s3.useSSL, accessKey: s3.accessKey, secretKey: s3.secretKey });
  const bucket = `runner-jobs-${Date.now().toString(36)}`;
  let root: { dir: string; remove: () => Promise<void> };
  let workspaces: string;
  const commits: { artifactId: string; sha256: string; sizeBytes: bigint }[] = [];
  const commitArtifact: ArtifactCommitter = (commit) => {
    commits.push({ ...commit });
    return Promise.resolve();
  };

  beforeAll(async () => {
    root = await tempDir("sluice-job-runner-test-");
    workspaces = path.join(root.dir, "workspaces");
    await client.makeBucket(bucket);
  });
  afterAll(async () => {
    await root.remove();
  });

  const runner = (overrides: Partial<Parameters<typeof createJobRunner>[0]> = {}) =>
    createJobRunner({
      logger: noopLogger,
      runnerId: "runner-test-1",
      workspaceRoot: workspaces,
      // Stands in for ArtifactService.IssueDeployGrants: presigned PUTs, the runner holds no credential.
      providers: createProviderTable({
        deployGrants: async ({ bucket: target, keys }) =>
          Promise.all(keys.map(async (key) => create(GrantSchema, { url: await client.presignedPutObject(target, key, 600), method: "PUT", bucket: target, key }))),
      }),
      commitArtifact,
      baseEnv: BASE_ENV,
      ...overrides,
    });

  /** Zips `files` (path → content), stores the zip in MinIO and returns an input grant for it. */
  async function storedInput(name: string, files: Record<string, string>): Promise<MessageInitShape<typeof InputGrantSchema>> {
    const dir = path.join(root.dir, `in-${name}-${Math.random().toString(36).slice(2)}`);
    for (const [file, content] of Object.entries(files)) {
      await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
      await writeFile(path.join(dir, file), content);
    }
    const zip = `${dir}.zip`;
    const zipped = await zipDirectory(dir, [], zip);
    const key = `inputs/${name}-${Math.random().toString(36).slice(2)}.zip`;
    await client.fPutObject(bucket, key, zip);
    return {
      name,
      artifactId: `upstream/${name}`,
      sha256: zipped.sha256,
      sizeBytes: BigInt(zipped.sizeBytes),
      grant: { url: await client.presignedGetObject(bucket, key, 600), method: "GET", bucket, key },
    };
  }

  async function outputGrant(name: string, actionExecutionId: string): Promise<MessageInitShape<typeof OutputGrantSchema>> {
    const key = `executions/${actionExecutionId}/${name}.zip`;
    return {
      name,
      artifactId: `${actionExecutionId}/${name}`,
      grant: { url: await client.presignedPutObject(bucket, key, 600), method: "PUT", bucket, key },
    };
  }

  /** Downloads an object, returns its SHA-256 and the files of the zip. */
  async function fetchZip(key: string): Promise<{ sha256: string; size: number; files: Record<string, string> }> {
    const stream = await client.getObject(bucket, key);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    const dir = path.join(root.dir, `fetched-${Math.random().toString(36).slice(2)}`);
    await mkdir(dir);
    await writeFile(`${dir}.zip`, bytes);
    await extractZip(`${dir}.zip`, dir);
    const files: Record<string, string> = {};
    for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) {
        const full = path.join(entry.parentPath, entry.name);
        files[path.relative(dir, full).split(path.sep).join("/")] = await readFile(full, "utf8");
      }
    }
    return { sha256: createHash("sha256").update(bytes).digest("hex"), size: bytes.length, files };
  }

  it("Git source: produces a zip of the tree at the commit (no .git) with the commit's variables", async () => {
    const repo = path.join(root.dir, "repo");
    await mkdir(path.join(repo, "lib"), { recursive: true });
    git(repo, ["init", "-q", "-b", "trunk"]);
    await writeFile(path.join(repo, "README.md"), "hello\n");
    await writeFile(path.join(repo, "lib", "x.js"), "export const x = 1;\n");
    const commit = commitAll(repo, "Initial import", "2024-05-01T12:00:00Z", "2024-05-01T12:05:00Z");
    const job = makeJob({
      actionTypeId: { category: "Source", owner: "AWS", provider: "Git", version: "1" },
      configuration: { RepositoryUrl: pathToFileURL(repo).href, BranchName: "trunk" },
      outputs: [await outputGrant("SourceArtifact", "src-ae-1")],
    });

    const result = await runner().run(job, new AbortController().signal);

    expect(result.status).toBe("Succeeded");
    expect(result.jobId).toBe(job.jobId);
    expect(result.updatedBy).toBe("runner-test-1");
    expect(result.outputVariables).toEqual({
      CommitId: commit,
      BranchName: "trunk",
      CommitMessage: "Initial import",
      AuthorDate: "2024-05-01T12:00:00Z",
      CommitterDate: "2024-05-01T12:05:00Z",
    });
    expect(result.revision?.revisionId).toBe(commit);
    expect(result.revision?.revisionSummary).toBe("Initial import");
    expect(result.outputArtifacts).toHaveLength(1);
    const produced = result.outputArtifacts[0];
    expect(produced?.artifactId).toBe("src-ae-1/SourceArtifact");
    const stored = await fetchZip(produced?.key ?? "");
    expect(stored.files).toEqual({ "README.md": "hello\n", "lib/x.js": "export const x = 1;\n" });
    expect(produced?.sha256).toBe(stored.sha256);
    expect(produced?.sizeBytes).toBe(BigInt(stored.size));
    expect(commits).toContainEqual({ artifactId: "src-ae-1/SourceArtifact", sha256: stored.sha256, sizeBytes: BigInt(stored.size) });
  });

  it("Commands: primary input at the root, secondary under its name, declared outputs zipped from globs", async () => {
    const job = makeJob({
      actionExecutionId: "build-ae-2",
      inputs: [await storedInput("Source", { "app.txt": "app\n", "lib/a.txt": "a\n" }), await storedInput("Config", { "settings.ini": "x=1\n" })],
      outputs: [await outputGrant("BuildOutput", "build-ae-2")],
      outputArtifacts: [{ name: "BuildOutput", files: ["dist/**"] }],
      commands: [
        "test -f app.txt && test -f lib/a.txt",
        'test "$CODEBUILD_SRC_DIR" = "$PWD"',
        'test -f "$CODEBUILD_SRC_DIR_Config/settings.ini" && test -f "$SLUICE_INPUT_CONFIG/settings.ini"',
        'test "$SLUICE_INPUT_SOURCE" = "$PWD"',
        "mkdir -p dist && cat app.txt Config/settings.ini > dist/bundle.txt",
        'echo "$SLUICE_PIPELINE_NAME/$SLUICE_ACTION_NAME" > dist/who.txt',
        "export IMAGE_TAG=v42",
      ],
      outputVariables: ["IMAGE_TAG"],
    });

    const result = await runner().run(job, new AbortController().signal);

    expect(result.errorDetails?.message ?? "").toBe("");
    expect(result.status).toBe("Succeeded");
    expect(result.outputVariables).toEqual({ IMAGE_TAG: "v42" });
    const produced = result.outputArtifacts[0];
    expect(produced?.name).toBe("BuildOutput");
    const stored = await fetchZip(produced?.key ?? "");
    expect(stored.files).toEqual({ "dist/bundle.txt": "app\nx=1\n", "dist/who.txt": "runner-test/Run\n" });
    expect(produced?.sha256).toBe(stored.sha256);
  });

  it("Commands with a buildspec file of the input: phases run, exported variables and both artifacts come back", async () => {
    const buildspec = [
      "version: 0.2",
      "env:",
      "  exported-variables: [IMAGE_TAG]",
      "phases:",
      "  build:",
      "    commands:",
      "      - mkdir -p dist/js reports",
      "      - cp app.txt dist/js/app.js && echo map > dist/js/app.js.map && echo ok > reports/junit.xml",
      "      - IMAGE_TAG=v7",
      "artifacts:",
      "  base-directory: dist",
      "  files: ['**/*']",
      "  discard-paths: yes",
      "  exclude-paths: ['**/*.map']",
      "  secondary-artifacts:",
      "    Reports:",
      "      files: [reports/*.xml]",
      "",
    ].join("\n");
    const job = makeJob({
      actionExecutionId: "build-ae-bs",
      inputs: [await storedInput("Source", { "app.txt": "app\n", "ci/buildspec.yml": buildspec })],
      outputs: [await outputGrant("Site", "build-ae-bs"), await outputGrant("Reports", "build-ae-bs")],
      outputArtifacts: [{ name: "Site" }, { name: "Reports" }],
      configuration: { BuildSpec: "ci/buildspec.yml" },
    });

    const result = await runner().run(job, new AbortController().signal);

    expect(result.errorDetails?.message ?? "").toBe("");
    expect(result.status).toBe("Succeeded");
    expect(result.summary).toBe("Buildspec succeeded: BUILD (3 commands)");
    expect(result.outputVariables).toEqual({ IMAGE_TAG: "v7" });
    const site = result.outputArtifacts.find((a) => a.name === "Site");
    const reports = result.outputArtifacts.find((a) => a.name === "Reports");
    expect((await fetchZip(site?.key ?? "")).files).toEqual({ "app.js": "app\n" });
    expect((await fetchZip(reports?.key ?? "")).files).toEqual({ "reports/junit.xml": "ok\n" });
  });

  it("Commands: a failing command gives a Failed result with error details and a summary, and commits nothing", async () => {
    const before = commits.length;
    const job = makeJob({
      commands: ["echo compiling", "echo 'error: it broke' >&2", "exit 2"],
      outputs: [await outputGrant("BuildOutput", "build-ae-3")],
      outputArtifacts: [{ name: "BuildOutput", files: ["**"] }],
    });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("JobFailed");
    expect(result.errorDetails?.message).toBe("Commands failed with exit code 2: error: it broke");
    expect(result.summary).toContain("compiling");
    expect(result.outputArtifacts).toEqual([]);
    expect(commits.length).toBe(before);
  });

  it("streams masked log lines as written and stores the whole masked log with the job's log grant before it returns", async () => {
    const secret = `tok en/${Math.random().toString(36).slice(2)}+x`;
    const configSecret = `cfg-${Math.random().toString(36).slice(2)}`;
    const forms = [secret, Buffer.from(secret).toString("base64"), encodeURIComponent(secret), configSecret];
    const key = `logs/${Math.random().toString(36).slice(2)}.jsonl`;
    const job = makeJob({
      commands: ['echo "raw $TOKEN"', 'printf %s "$TOKEN" | base64 -w0; echo', "jq -rn --arg v \"$TOKEN\" '$v|@uri'", `echo "config ${configSecret}"`, "echo oops >&2"],
      environmentVariables: [{ name: "TOKEN", value: secret, type: "SECRET" }],
      configuration: { ApiKey: configSecret },
      secretConfigurationKeys: ["ApiKey"],
      log: { name: "log.1", artifactId: "build-ae-log/log.1", grant: { url: await client.presignedPutObject(bucket, key, 600), method: "PUT", bucket, key } },
    });
    const batches: { lines: { text: string; stream: string }[]; final: boolean; stored: boolean }[] = [];
    const result = await runner({
      publishLog: (batch) => {
        batches.push({ lines: (batch.lines ?? []).map((l) => ({ text: l.text ?? "", stream: l.stream ?? "" })), final: batch.final ?? false, stored: batch.stored ?? false });
        return Promise.resolve();
      },
    }).run(job, new AbortController().signal);
    expect(result.status).toBe("Succeeded");
    const streamed = batches.flatMap((b) => b.lines);
    expect(streamed.map((l) => l.text)).toEqual(expect.arrayContaining(["raw ***", "config ***", "oops", "job succeeded"]));
    expect(streamed.find((l) => l.text === "oops")?.stream).toBe("stderr");
    expect(batches.at(-1)).toMatchObject({ final: true, stored: true, lines: [] });
    const stored = await new Promise<string>((resolve, reject) => {
      let text = "";
      client.getObject(bucket, key).then((stream) => {
        stream.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
        stream.on("end", () => resolve(text));
        stream.on("error", reject);
      }, reject);
    });
    expect(stored.trim().split("\n").map((l) => (JSON.parse(l) as { text: string }).text)).toEqual(streamed.map((l) => l.text));
    for (const form of forms) {
      expect(JSON.stringify(batches)).not.toContain(form);
      expect(stored).not.toContain(form);
    }
    const logCommit = commits.find((c) => c.artifactId === "build-ae-log/log.1");
    expect(logCommit?.sha256).toBe(createHash("sha256").update(stored).digest("hex"));
  });

  it("fails with JobTimedOut at the job's deadline and kills the whole process group", async () => {
    const pids = path.join(root.dir, "timeout-pids");
    await mkdir(pids, { recursive: true });
    const job = makeJob({
      commands: [`sleep 100 & echo $! > ${pids}/a`, `sleep 100 & echo $! > ${pids}/b`, "wait"],
      deadline: timestampFromDate(new Date(Date.now() + 1500)),
    });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("JobTimedOut");
    const a = Number(await readFile(path.join(pids, "a"), "utf8"));
    const b = Number(await readFile(path.join(pids, "b"), "utf8"));
    await expect.poll(async () => [await isProcessAlive(a), await isProcessAlive(b)], { timeout: 10_000 }).toEqual([false, false]);
  });

  it("fails a job whose deadline already passed without running it", async () => {
    const job = makeJob({ commands: ["touch should-not-run"], deadline: timestampFromDate(new Date(Date.now() - 1000)) });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("JobTimedOut");
  });

  it("fails with ArtifactIntegrityError when an input does not match its SHA-256", async () => {
    const input = await storedInput("Source", { "a.txt": "a\n" });
    const job = makeJob({ inputs: [{ ...input, sha256: "0".repeat(64) }], commands: ["true"] });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("ArtifactIntegrityError");
    // The presigned URL is a credential: it never appears in a result.
    expect(result.errorDetails?.message).not.toContain("X-Amz-Signature");
    expect(result.summary).not.toContain("X-Amz-Signature");
  });

  it("fails when a declared output matches no files", async () => {
    const job = makeJob({
      commands: ["true"],
      outputs: [await outputGrant("BuildOutput", "build-ae-4")],
      outputArtifacts: [{ name: "BuildOutput", files: ["dist/**"] }],
    });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.message).toContain("no files match");
  });

  it("Rule/Commands: runs a condition's Commands rule like a Commands action, inputs included", async () => {
    const job = makeJob({
      actionName: "SmokeTest",
      actionTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" },
      inputs: [await storedInput("BuildOut", { "health.txt": "ok\n" })],
      commands: ['test "$(cat health.txt)" = ok', 'test "$SLUICE_ACTION_NAME" = SmokeTest'],
    });
    const passed = await runner().run(job, new AbortController().signal);
    expect(passed.errorDetails?.message ?? "").toBe("");
    expect(passed).toMatchObject({ status: "Succeeded", actionExecutionId: job.actionExecutionId, outputArtifacts: [] });
    const failing = makeJob({ actionTypeId: { category: "Rule", owner: "AWS", provider: "Commands", version: "1" }, commands: ["exit 4"] });
    const failed = await runner().run(failing, new AbortController().signal);
    expect(failed.status).toBe("Failed");
    expect(failed.errorDetails?.code).toBe("JobFailed");
  });

  it("fails with ConfigurationError for an action type it does not serve", async () => {
    const job = makeJob({ actionTypeId: { category: "Approval", owner: "AWS", provider: "Manual", version: "1" } });
    const result = await runner().run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("ConfigurationError");
  });

  it("reports a failed CommitArtifact as a failed job", async () => {
    const failing: ArtifactCommitter = () => Promise.reject(Object.assign(new Error("artifact service said no"), { code: 9 }));
    const job = makeJob({
      commands: ["mkdir out && echo x > out/x"],
      outputs: [await outputGrant("Out", "build-ae-5")],
      outputArtifacts: [{ name: "Out", files: ["out/*"] }],
    });
    const result = await runner({ commitArtifact: failing }).run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.message).toContain("artifact service said no");
  });

  it("renews an upload grant that has expired (or expires within a minute) before uploading", async () => {
    const key = `executions/renew-ae-1/Out.zip`;
    // A grant signed two minutes ago for one second: the object store refuses it.
    const expiredUrl = await client.presignedUrl("PUT", bucket, key, 1, {}, new Date(Date.now() - 120_000));
    expect((await fetch(expiredUrl, { method: "PUT", body: "x" })).status).toBe(403);
    const requests: { actionExecutionId: string; outputNames: readonly string[] }[] = [];
    const renewOutputGrants: OutputGrantRenewer = async (request) => {
      requests.push({ actionExecutionId: request.actionExecutionId, outputNames: [...request.outputNames] });
      const grants: OutputGrant[] = [];
      for (const name of request.outputNames) {
        const url = await client.presignedPutObject(bucket, key, 600);
        const expiresAt = timestampFromDate(new Date(Date.now() + 600_000));
        grants.push(create(OutputGrantMessage, { name, artifactId: `renew-ae-1/${name}`, grant: { url, method: "PUT", bucket, key, expiresAt } }));
      }
      return grants;
    };
    const job = makeJob({
      actionExecutionId: "renew-ae-1",
      commands: ["mkdir out && echo late > out/late.txt"],
      outputs: [
        {
          name: "Out",
          artifactId: "renew-ae-1/Out",
          grant: { url: expiredUrl, method: "PUT", bucket, key, expiresAt: timestampFromDate(new Date(Date.now() - 119_000)) },
        },
      ],
      outputArtifacts: [{ name: "Out", files: ["out/*"] }],
    });

    const result = await runner({ renewOutputGrants }).run(job, new AbortController().signal);

    expect(result.errorDetails?.message ?? "").toBe("");
    expect(result.status).toBe("Succeeded");
    expect(requests).toEqual([{ actionExecutionId: "renew-ae-1", outputNames: ["Out"] }]);
    const stored = await fetchZip(key);
    expect(stored.files).toEqual({ "out/late.txt": "late\n" });
    expect(result.outputArtifacts[0]?.sha256).toBe(stored.sha256);

    // A grant with more than a minute left is used as is.
    const freshKey = "executions/renew-ae-2/Fresh.zip";
    const fresh = {
      name: "Fresh",
      artifactId: "renew-ae-2/Fresh",
      grant: { url: await client.presignedPutObject(bucket, freshKey, 600), method: "PUT", bucket, key: freshKey },
    };
    const kept = makeJob({
      actionExecutionId: "renew-ae-2",
      commands: ["mkdir out && echo x > out/x"],
      outputs: [{ ...fresh, grant: { ...fresh.grant, expiresAt: timestampFromDate(new Date(Date.now() + 600_000)) } }],
      outputArtifacts: [{ name: "Fresh", files: ["out/*"] }],
    });
    expect((await runner({ renewOutputGrants }).run(kept, new AbortController().signal)).status).toBe("Succeeded");
    expect(requests).toHaveLength(1);
  });

  it("fails without leaking the URL when an expired upload grant cannot be renewed", async () => {
    const key = `executions/renew-ae-3/Out.zip`;
    const expiredUrl = await client.presignedUrl("PUT", bucket, key, 1, {}, new Date(Date.now() - 120_000));
    const refusing: OutputGrantRenewer = () =>
      Promise.reject(Object.assign(new Error("artifact renew-ae-3/Out is already stored"), { code: 9 }));
    const job = makeJob({
      actionExecutionId: "renew-ae-3",
      commands: ["mkdir out && echo x > out/x"],
      outputs: [{ name: "Out", artifactId: "renew-ae-3/Out", grant: { url: expiredUrl, method: "PUT", bucket, key, expiresAt: timestampFromDate(new Date(Date.now() - 1_000)) } }],
      outputArtifacts: [{ name: "Out", files: ["out/*"] }],
    });
    const result = await runner({ renewOutputGrants: refusing }).run(job, new AbortController().signal);
    expect(result.status).toBe("Failed");
    expect(result.errorDetails?.code).toBe("JobFailed");
    expect(result.errorDetails?.message).toContain("renewing it failed: artifact renew-ae-3/Out is already stored");
    expect(`${result.summary} ${result.errorDetails?.message ?? ""}`).not.toContain("X-Amz-Signature");
  });

  it("throws JobCancelledError (no result) when the runner stops during a job", async () => {
    const stop = new AbortController();
    const job = makeJob({ commands: ["sleep 100"] });
    const running = runner().run(job, stop.signal);
    await expect.poll(async () => (await readdir(workspaces)).length, { timeout: 10_000 }).toBeGreaterThan(0);
    stop.abort();
    await expect(running).rejects.toBeInstanceOf(JobCancelledError);
  });

  it("fails with JobCancelled when the orchestrator cancels a running job, and kills its process group", async () => {
    const pids = path.join(root.dir, "cancel-pids");
    await mkdir(pids, { recursive: true });
    const cancel = new AbortController();
    const job = makeJob({ commands: [`sleep 100 & echo $! > ${pids}/bg`, `echo $$ > ${pids}/sh`, "wait"] });
    const running = runner().run(job, new AbortController().signal, cancel.signal);
    await expect.poll(() => readdir(pids), { timeout: 10_000 }).toEqual(["bg", "sh"]);
    cancel.abort(new Error("execution abandoned"));
    const result = await running;
    expect(result.status).toBe("Failed");
    expect(result.errorDetails).toMatchObject({ code: "JobCancelled", message: "execution abandoned" });
    expect(result.summary).toBe("Cancelled: execution abandoned");
    const bg = Number(await readFile(path.join(pids, "bg"), "utf8"));
    const sh = Number(await readFile(path.join(pids, "sh"), "utf8"));
    await expect.poll(async () => [await isProcessAlive(bg), await isProcessAlive(sh)], { timeout: 10_000 }).toEqual([false, false]);
  });

  it("reports a cancel rather than handing the job back when the runner stops at the same time", async () => {
    const stop = new AbortController();
    const cancel = new AbortController();
    const running = runner().run(makeJob({ commands: ["sleep 100"] }), stop.signal, cancel.signal);
    await expect.poll(async () => (await readdir(workspaces)).length, { timeout: 10_000 }).toBeGreaterThan(0);
    cancel.abort(new Error("timed out"));
    stop.abort();
    const result = await running;
    expect(result.errorDetails?.code).toBe("JobCancelled");
  });

  it("fails a job cancelled before it started without running it", async () => {
    const marker = path.join(root.dir, "cancelled-before-start");
    const cancel = new AbortController();
    cancel.abort(new Error("abandoned while queued"));
    const result = await runner().run(makeJob({ commands: [`touch ${marker}`] }), new AbortController().signal, cancel.signal);
    expect(result.errorDetails).toMatchObject({ code: "JobCancelled", message: "abandoned while queued" });
    expect(existsSync(marker)).toBe(false);
  });

  it("aborts an ObjectStore deploy's upload in flight when cancelled", async () => {
    // A deploy target that accepts the upload and never answers: only aborting the request ends it.
    const puts: string[] = [];
    const open = new Set<http.ServerResponse>();
    const hung = http.createServer((req, res) => {
      if (req.method === "PUT") {
        puts.push(req.url ?? "");
        open.add(res);
        req.resume();
        return;
      }
      res.writeHead(200).end();
    });
    await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
    const port = (hung.address() as AddressInfo).port;
    try {
      const input = await storedInput("Site", { "index.html": "<p>hi</p>\n" });
      const cancel = new AbortController();
      const deploy = runner({
        providers: createProviderTable({
          deployGrants: ({ bucket: target, keys }) =>
            Promise.resolve(keys.map((key) => create(GrantSchema, { url: `http://127.0.0.1:${port}/${target}/${key}`, method: "PUT", bucket: target, key }))),
        }),
      });
      const job = makeJob({
        actionTypeId: { category: "Deploy", owner: "AWS", provider: "ObjectStore", version: "1" },
        configuration: { BucketName: "site" },
        inputs: [input],
      });
      const running = deploy.run(job, new AbortController().signal, cancel.signal);
      await expect.poll(() => puts.length, { timeout: 10_000 }).toBe(1);
      cancel.abort(new Error("execution abandoned"));
      const result = await running;
      expect(result.errorDetails).toMatchObject({ code: "JobCancelled", message: "execution abandoned" });
      // The client side of the hung request was torn down.
      await expect.poll(() => [...open].every((res) => res.destroyed || res.socket === null), { timeout: 10_000 }).toBe(true);
    } finally {
      for (const res of open) res.destroy();
      await new Promise<void>((resolve) => hung.close(() => resolve()));
    }
  });

  it("removes every workspace after the job, whatever the outcome", async () => {
    await expect.poll(async () => readdir(workspaces), { timeout: 10_000 }).toEqual([]);
  });
});
