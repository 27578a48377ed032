/** Runs tasks one after another per key; different keys run concurrently. */
export interface KeyedSerial {
  /** Runs `fn` once every earlier task of `key` has settled; resolves or rejects as `fn` does. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** How many keys have a task queued or running (a settled key is forgotten). */
  readonly size: number;
}

/**
 * A per-key promise chain. The orchestrator sends every write of one runtime
 * document through it, so one process never races itself on a document: with
 * MongoDB that saves lost conditional writes; with FerretDB 1.x, whose
 * updates are read-modify-write without isolation, it is what keeps two
 * writes of one process from overwriting each other.
 */
export function createKeyedSerial(): KeyedSerial {
  const chains = new Map<string, Promise<void>>();
  return {
    run(key, fn) {
      const previous = chains.get(key) ?? Promise.resolve();
      const result = previous.then(fn, fn);
      const tail = result.then(
        () => undefined,
        () => undefined,
      );
      chains.set(key, tail);
      void tail.then(() => {
        if (chains.get(key) === tail) chains.delete(key);
      });
      return result;
    },
    get size() {
      return chains.size;
    },
  };
}
