import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Client as MinioClient } from "minio";
import { afterAll, beforeAll, describe, expect, inject, it, vi } from "vitest";
// Brings in the typing of inject("servers") (vitest ProvidedContext, declared by the testkit).
import type {} from "@sluice/testkit";
import { downloadFile, putFile, TransferError, uploadFile } from "./transfer.js";

// expect.stringMatching is typed `any`; as `unknown` it can sit inside toMatchObject shapes.
const matching = (re: RegExp): unknown => expect.stringMatching(re);

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

// A tiny object store: PUT /<key> stores the body (only when it arrived complete), GET serves it;
// /forbidden/* answers 403 with an S3-style error body; /lying/* serves other bytes than were stored.
interface Recorded {
  key: string;
  complete: boolean;
  length: number;
}
let server: Server;
let base: string;
let work: string;
const objects = new Map<string, Buffer>();
const puts: Recorded[] = [];

async function body(req: IncomingMessage): Promise<{ data: Buffer; complete: boolean }> {
  const chunks: Buffer[] = [];
  let complete = true;
  try {
    for await (const c of req) chunks.push(c as Buffer);
  } catch {
    complete = false;
  }
  return { data: Buffer.concat(chunks), complete: complete && req.complete };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "artifacts-transfer-"));
  server = createServer((req, res) => {
    void (async () => {
      const key = (req.url ?? "/").split("?")[0] ?? "/";
      if (key.startsWith("/forbidden/")) {
        await body(req);
        res.writeHead(403, { "content-type": "application/xml" });
        res.end("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>");
        return;
      }
      if (req.method === "PUT") {
        const { data, complete } = await body(req);
        const length = Number(req.headers["content-length"]);
        puts.push({ key, complete, length });
        if (complete && data.length === length) objects.set(key, data);
        res.writeHead(200).end();
        return;
      }
      if (key.startsWith("/endless/")) {
        // No Content-Length: only counting the bytes can stop this body.
        res.writeHead(200, { "transfer-encoding": "chunked" });
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = (): void => {
          while (!res.destroyed && res.write(chunk));
          if (!res.destroyed) res.once("drain", pump);
        };
        res.on("close", () => res.removeAllListeners("drain"));
        pump();
        return;
      }
      const stored = objects.get(key.replace("/lying/", "/"));
      if (stored === undefined) {
        res.writeHead(404).end("<Error><Code>NoSuchKey</Code></Error>");
        return;
      }
      const served = key.startsWith("/lying/") ? Buffer.concat([stored, Buffer.from("tampered")]) : stored;
      res.writeHead(200, { "content-length": served.length }).end(served);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(work, { recursive: true, force: true });
});

describe("uploadFile / downloadFile over HTTP", () => {
  it("round-trips a file and verifies the checksum", async () => {
    const data = randomBytes(300_000);
    const src = join(work, "rt.bin");
    await writeFile(src, data);
    await uploadFile(`${base}/bucket/rt.bin?X-Amz-Signature=abc`, src, sha(data));
    expect(objects.get("/bucket/rt.bin")?.equals(data)).toBe(true);
    expect(puts.at(-1)).toEqual({ key: "/bucket/rt.bin", complete: true, length: data.length });

    const dest = join(work, "rt.out");
    await downloadFile(`${base}/bucket/rt.bin`, dest, sha(data));
    expect((await readFile(dest)).equals(data)).toBe(true);
  });

  it("uploads an empty file", async () => {
    const src = join(work, "empty.bin");
    await writeFile(src, "");
    await uploadFile(`${base}/bucket/empty.bin`, src, sha(Buffer.alloc(0)));
    expect(objects.get("/bucket/empty.bin")?.length).toBe(0);
  });

  it("deletes the download and throws ArtifactIntegrityException on a checksum mismatch", async () => {
    const data = Buffer.from("the real artifact");
    objects.set("/bucket/tampered.zip", data);
    const dest = join(work, "tampered.out");
    await expect(downloadFile(`${base}/lying/bucket/tampered.zip`, dest, sha(data))).rejects.toMatchObject({
      code: "ArtifactIntegrityException",
      violations: [{ field: "sha256" }],
    });
    expect(existsSync(dest)).toBe(false);
  });

  it("aborts an upload whose file does not match the promised checksum, so nothing is stored", async () => {
    const src = join(work, "wrong.bin");
    await writeFile(src, randomBytes(200_000));
    const before = puts.length;
    await expect(uploadFile(`${base}/bucket/wrong.bin`, src, sha(Buffer.from("something else")))).rejects.toMatchObject({
      code: "ArtifactIntegrityException",
    });
    expect(objects.has("/bucket/wrong.bin")).toBe(false);
    // The server may or may not have seen the (aborted) request; if it did, the body was incomplete.
    await vi.waitFor(() => {
      for (const p of puts.slice(before)) expect(p.complete).toBe(false);
    });
  });

  it("reports an HTTP error with its S3 code, without the URL's query (a credential)", async () => {
    const src = join(work, "forbidden.bin");
    await writeFile(src, "x");
    const err = await uploadFile(`${base}/forbidden/k?X-Amz-Signature=secret`, src, sha(Buffer.from("x"))).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransferError);
    expect(err).toMatchObject({ statusCode: 403, retryable: false, message: matching(/HTTP 403 \(AccessDenied\)/) });
    expect((err as Error).message).not.toMatch(/secret/);

    const dest = join(work, "missing.out");
    await expect(downloadFile(`${base}/bucket/missing`, dest, sha(Buffer.from("x")))).rejects.toMatchObject({
      statusCode: 404,
      message: matching(/NoSuchKey/),
    });
    expect(existsSync(dest)).toBe(false);
  });

  it("refuses a malformed checksum or URL, naming the field", async () => {
    await expect(downloadFile(`${base}/x`, join(work, "x"), "ABC")).rejects.toMatchObject({
      message: "expectedSha256: must be 64 lowercase hex characters",
    });
    await expect(uploadFile("ftp://host/x", join(work, "x"), sha(Buffer.from("")))).rejects.toMatchObject({
      message: "url: expected http or https, got ftp:",
    });
  });

  it("reports a refused connection as a retryable TransferError", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(downloadFile(`http://127.0.0.1:${port}/x`, join(work, "refused"), sha(Buffer.from("")))).rejects.toMatchObject({
      name: "TransferError",
      retryable: true,
    });
  });
});

describe("downloadFile size bound", () => {
  it("aborts a body without Content-Length once it passes maxBytes, deleting the file", async () => {
    const dest = join(work, "endless.out");
    const err = await downloadFile(`${base}/endless/bucket/x.zip`, dest, sha(Buffer.from("x")), { maxBytes: 1_000_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransferError);
    expect(err).toMatchObject({ retryable: false, message: matching(/more than the 1000000 bytes expected/) });
    expect(existsSync(dest)).toBe(false);
  });
});

describe("uploadFile / downloadFile against MinIO presigned URLs", () => {
  it("refuses to download an object bigger than the recorded size (a grant to another object)", async () => {
    const { s3 } = inject("servers");
    const client = new MinioClient({ ...s3, region: "us-east-1" });
    const bucket = `artifacts-bound-${randomBytes(4).toString("hex")}`;
    await client.makeBucket(bucket, "us-east-1");
    const big = randomBytes(2_000_000);
    await client.putObject(bucket, "big.zip", big);
    const dest = join(work, "big.out");
    // The artifact was recorded with 1000 bytes; the grant's object is 2 MB.
    const err = await downloadFile(await client.presignedGetObject(bucket, "big.zip", 60), dest, sha(big), { maxBytes: 1000 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransferError);
    expect((err as Error).message).toMatch(/the object has 2000000 bytes, more than the 1000 expected/);
    expect((err as Error).message).not.toMatch(/X-Amz-Signature/);
    expect(existsSync(dest)).toBe(false);
  });

  it("puts a file with its headers through a presigned PUT", async () => {
    const { s3 } = inject("servers");
    const client = new MinioClient({ ...s3, region: "us-east-1" });
    const bucket = `artifacts-put-${randomBytes(4).toString("hex")}`;
    await client.makeBucket(bucket, "us-east-1");
    const src = join(work, "page.html");
    await writeFile(src, "<h1>hi</h1>\n");
    await putFile(await client.presignedPutObject(bucket, "site/index.html", 60), src, {
      headers: { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "max-age=60" },
    });
    const stat = await client.statObject(bucket, "site/index.html");
    expect(stat.size).toBe(12);
    expect(stat.metaData["content-type"]).toBe("text/html; charset=utf-8");
    expect(stat.metaData["cache-control"]).toBe("max-age=60");
    await expect(putFile(`${base}/forbidden/k?X-Amz-Signature=secret`, src)).rejects.toMatchObject({ statusCode: 403 });
  });

  it("moves a file through real S3 presigned PUT and GET", async () => {
    const { s3 } = inject("servers");
    const client = new MinioClient({ ...s3, region: "us-east-1" });
    const bucket = `artifacts-transfer-${randomBytes(4).toString("hex")}`;
    await client.makeBucket(bucket, "us-east-1");
    const data = randomBytes(1_500_000);
    const src = join(work, "s3.bin");
    await writeFile(src, data);

    await uploadFile(await client.presignedPutObject(bucket, "a/b.zip", 60), src, sha(data));
    const stat = await client.statObject(bucket, "a/b.zip");
    expect(stat.size).toBe(data.length);

    const dest = join(work, "s3.out");
    await downloadFile(await client.presignedGetObject(bucket, "a/b.zip", 60), dest, sha(data));
    expect((await readFile(dest)).equals(data)).toBe(true);

    await expect(
      downloadFile(await client.presignedGetObject(bucket, "a/b.zip", 60), join(work, "s3-bad.out"), sha(Buffer.from("no"))),
    ).rejects.toMatchObject({ code: "ArtifactIntegrityException" });
    expect(existsSync(join(work, "s3-bad.out"))).toBe(false);
  });
});
