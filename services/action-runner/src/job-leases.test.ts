import { create } from "@bufbuild/protobuf";
import { JobResultSchema } from "@sluice/proto";
import { describe, expect, it } from "vitest";
import { sandboxArgv } from "./isolation.js";
import { createJobLeases } from "./job-leases.js";

describe("job leases", () => {
  it("lets a second delivery join a running job, heartbeating both, and remembers the result", async () => {
    const leases = createJobLeases();
    const beats: string[] = [];
    const lease = leases.begin("j1", 1, () => beats.push("first"));
    const held = leases.running("j1");
    expect(held).toBe(lease.held);
    expect(held?.delivery).toBe(1);
    const detach = held?.attach(2, () => beats.push("second"));
    // The result names the newest lease.
    expect(held?.delivery).toBe(2);
    lease.heartbeat();
    detach?.();
    lease.heartbeat();
    expect(beats).toEqual(["first", "second", "first"]);
    const result = create(JobResultSchema, { jobId: "j1", status: "Succeeded" });
    lease.settle(result);
    expect(await held?.done).toBe(result);
    expect(leases.running("j1")).toBeUndefined();
    expect(leases.finished("j1")).toBe(result);
  });

  it("forgets nothing of a job that ended without a result, and finished ones after their TTL or beyond the cap", () => {
    let now = 0;
    const leases = createJobLeases({ maxFinished: 2, finishedTtlMs: 1000, now: () => now });
    leases.begin("lost", 1, () => undefined).settle(undefined);
    expect([leases.running("lost"), leases.finished("lost")]).toEqual([undefined, undefined]);
    for (const id of ["a", "b", "c"]) leases.begin(id, 1, () => undefined).settle(create(JobResultSchema, { jobId: id }));
    expect(["a", "b", "c"].map((id) => leases.finished(id)?.jobId)).toEqual([undefined, "b", "c"]);
    now = 2000;
    expect(leases.finished("c")).toBeUndefined();
  });
});

describe("sandbox argv", () => {
  it("puts the PID namespace outermost and the uid switch inside it", () => {
    expect(sandboxArgv(["bash", "x.sh"], { mode: "process-group" })).toEqual(["bash", "x.sh"]);
    expect(sandboxArgv(["bash", "x.sh"], { mode: "pid-namespace", uid: 1500, gid: 1600 })).toEqual([
      "unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "--",
      "setpriv", "--reuid", "1500", "--regid", "1600", "--clear-groups", "--no-new-privs", "--",
      "bash", "x.sh",
    ]);
  });
});
