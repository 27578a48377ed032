// How validation messages quote user values and name fields.

import { LIMITS } from "../limits.js";

const SIMPLE_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,49}$/;

/** `base.key` for plain keys, `base["odd key"]` otherwise, so every path is unambiguous. */
export function keyPath(base: string, key: string): string {
  return SIMPLE_KEY.test(key) ? `${base}.${key}` : `${base}[${q(key)}]`;
}

/** A user value quoted for a message, cut at 100 characters so messages stay short. */
export function q(value: string): string {
  return JSON.stringify(value.length > 100 ? `${value.slice(0, 100)}...` : value);
}

/** A list for a message, cut after 15 entries (the most output variables an action may declare). */
export function listed(names: ReadonlySet<string>): string {
  const shown: string[] = [];
  for (const name of names) {
    if (shown.length === LIMITS.maxOutputVariables) return `${shown.join(", ")}, ...`;
    shown.push(name.length > 100 ? `${name.slice(0, 100)}...` : name);
  }
  return shown.join(", ");
}

export function bucketMessage(value: string): string {
  return `${q(value)} is not a bucket name: 3-63 characters of a-z 0-9 . -, starting and ending with a letter or digit`;
}
