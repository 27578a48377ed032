import { describe, expect, it } from "vitest";
import { createKeyedSerial } from "./serial.js";

/** A task that stays running until the test finishes it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

describe("createKeyedSerial", () => {
  it("runs the tasks of one key one after another, in the order they came", async () => {
    const serial = createKeyedSerial();
    const log: string[] = [];
    const first = gate();
    const tasks = [
      serial.run("p", async () => {
        log.push("1 start");
        await first.promise;
        log.push("1 end");
        return 1;
      }),
      serial.run("p", () => {
        log.push("2");
        return Promise.resolve(2);
      }),
      serial.run("p", () => {
        log.push("3");
        return Promise.resolve(3);
      }),
    ];
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(["1 start"]);
    first.open();
    expect(await Promise.all(tasks)).toEqual([1, 2, 3]);
    expect(log).toEqual(["1 start", "1 end", "2", "3"]);
  });

  it("runs tasks of different keys concurrently", async () => {
    const serial = createKeyedSerial();
    const blocked = gate();
    const a = serial.run("a", () => blocked.promise.then(() => "a"));
    // "b" finishes while "a" still waits: it is not queued behind it.
    expect(await serial.run("b", () => Promise.resolve("b"))).toBe("b");
    blocked.open();
    expect(await a).toBe("a");
  });

  it("rejects as the task does, and a failure does not block the next task of the key", async () => {
    const serial = createKeyedSerial();
    const failed = serial.run("p", () => Promise.reject(new Error("write lost")));
    const next = serial.run("p", () => Promise.resolve("next"));
    await expect(failed).rejects.toThrow("write lost");
    expect(await next).toBe("next");
  });

  it("forgets a key once its last task settled, so the map does not grow with every key", async () => {
    const serial = createKeyedSerial();
    const blocked = gate();
    const held = serial.run("held", () => blocked.promise);
    await Promise.all([0, 1, 2].map((i) => serial.run(`p${i}`, () => Promise.resolve(i))));
    await serial.run("p0", () => Promise.reject(new Error("failed"))).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 0));
    expect(serial.size).toBe(1);
    blocked.open();
    await held;
    await new Promise((r) => setTimeout(r, 0));
    expect(serial.size).toBe(0);
  });
});
