import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { StateChangeEventSchema } from "@sluice/proto";
import type { StateChangeEvent } from "@sluice/proto";
import { watchExecution } from "./watch.js";
import type { WatchSource, WatchedState } from "./watch.js";

const ID = "11111111-1111-4111-8111-111111111111";
type EventInit = Exclude<MessageInitShape<typeof StateChangeEventSchema>, StateChangeEvent>;

/** A source whose state the test sets and whose events the test emits. */
function source(): { src: WatchSource; set(status: string): void; emit(event: EventInit): void; stopped: () => boolean } {
  let status = "InProgress";
  let handler: ((e: StateChangeEvent) => void) | undefined;
  let stopped = false;
  const src: WatchSource = {
    read: (): Promise<WatchedState> =>
      Promise.resolve({ terminal: status !== "InProgress", snapshot: { pipelineExecution: { pipelineExecutionId: ID, status } } }),
    subscribe: (h) => {
      handler = h;
      return Promise.resolve({
        stop: () => {
          stopped = true;
          return Promise.resolve();
        },
      });
    },
  };
  return {
    src,
    set: (s) => (status = s),
    emit: (e) => handler?.(create(StateChangeEventSchema, { executionId: ID, ...e })),
    stopped: () => stopped,
  };
}

describe("watchExecution", () => {
  it("reports the end from a re-read when the terminal event never comes", async () => {
    const s = source();
    const stream = watchExecution(s.src, ID, new AbortController().signal, 20);
    const first = await stream.next();
    expect(first.value).toEqual({ snapshot: { pipelineExecution: { pipelineExecutionId: ID, status: "InProgress" } } });
    s.set("Succeeded");
    const second = await stream.next();
    expect(second.value).toEqual({ snapshot: { pipelineExecution: { pipelineExecutionId: ID, status: "Succeeded" } } });
    expect((await stream.next()).done).toBe(true);
    expect(s.stopped()).toBe(true);
  });

  it("forwards each event of the execution once, ignoring other executions", async () => {
    const s = source();
    const stream = watchExecution(s.src, ID, new AbortController().signal, 60_000);
    await stream.next();
    s.emit({ eventId: "a", detailType: "CodePipeline Stage Execution State Change", stage: "Build", state: "STARTED" });
    s.emit({ eventId: "a", detailType: "CodePipeline Stage Execution State Change", stage: "Build", state: "STARTED" });
    s.emit({ eventId: "other", executionId: "22222222-2222-4222-8222-222222222222", state: "STARTED" });
    expect((await stream.next()).value?.event?.eventId).toBe("a");
    // A terminal pipeline event ends the watch only when the state agrees (a replay of an older end does not).
    s.emit({ eventId: "b", detailType: "CodePipeline Pipeline Execution State Change", state: "FAILED" });
    expect((await stream.next()).value?.event?.eventId).toBe("b");
    s.set("Failed");
    s.emit({ eventId: "c", detailType: "CodePipeline Pipeline Execution State Change", state: "FAILED" });
    expect((await stream.next()).value?.snapshot?.pipelineExecution?.status).toBe("Failed");
    expect((await stream.next()).done).toBe(true);
  });

  it("ends when the signal aborts", async () => {
    const s = source();
    const controller = new AbortController();
    const stream = watchExecution(s.src, ID, controller.signal, 60_000);
    await stream.next();
    const pending = stream.next();
    controller.abort();
    expect((await pending).done).toBe(true);
    expect(s.stopped()).toBe(true);
  });
});
