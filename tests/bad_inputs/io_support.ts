/**
 * Helpers for the io bad-input corpus: raw-socket HTTP servers on 127.0.0.1 (for faults
 * `Deno.serve` cannot produce: a stall after the headers, a close-delimited body, a truncated
 * chunked body), a content server whose bytes and ETag can change, and small assertions.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { AttnkitError } from "../../lib/errors.ts";

/** A raw server: `reply` gets each connection after its request head was read. */
export interface RawServer {
  /** Base URL ending in `/`. */
  url: string;
  /** Request heads received so far. */
  heads: string[];
  /** Closes the listener and every connection. */
  close(): Promise<void>;
}

/**
 * Serves raw bytes: `reply(conn, head, closed)` writes whatever it likes; a reply that never
 * answers awaits `closed`, which settles when the test closes the server.
 */
export function rawServer(
  reply: (conn: Deno.Conn, head: string, closed: Promise<void>) => Promise<void>,
): RawServer {
  let onClose = () => {};
  const closed = new Promise<void>((r) => onClose = r);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const heads: string[] = [];
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      tasks.push((async () => {
        try {
          const buf = new Uint8Array(16384);
          let head = "";
          while (!head.includes("\r\n\r\n")) {
            const n = await conn.read(buf);
            if (n === null) return;
            head += new TextDecoder().decode(buf.subarray(0, n));
          }
          heads.push(head);
          await reply(conn, head, closed);
        } catch {
          // the client went away
        }
      })());
    }
  })().catch(() => {});
  const port = (listener.addr as Deno.NetAddr).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    heads,
    async close() {
      onClose();
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await accepting;
      await Promise.allSettled(tasks);
    },
  };
}

/** Writes all of `bytes` (text is UTF-8 encoded). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array | string): Promise<void> {
  const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes;
  for (let n = 0; n < b.length;) n += await conn.write(b.subarray(n));
}

/** sha256 hex. */
export const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/** Deterministic bytes of version `v`. */
export function content(size: number, v: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => (i * 31 + v * 101 + (i >> 12)) & 255);
}

/** Whether a path exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Every path under `dir` (relative), recursively. */
export async function tree(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(prefix ? `${dir}/${prefix}` : dir)) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(rel);
    if (e.isDirectory) out.push(...await tree(dir, rel));
  }
  return out.sort();
}

/** Asserts `p` rejects with an AttnkitError whose argument is `argument` and message matches. */
export async function rejectsClearly(
  p: Promise<unknown>,
  argument: string | RegExp,
  message: RegExp,
): Promise<AttnkitError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof AttnkitError, `expected an AttnkitError, got ${caught}`);
  const e = caught as AttnkitError;
  if (typeof argument === "string") assert.equal(e.argument, argument, e.message);
  else assert.match(e.argument, argument, e.message);
  assert.match(e.message, message);
  return e;
}

/** Asserts `f` throws an AttnkitError naming `argument` with a matching message. */
export function throwsClearly(f: () => unknown, argument: string, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof AttnkitError, `expected an AttnkitError, got ${e}`);
    assert.equal(e.argument, argument, e.message);
    assert.match(e.message, message);
    return true;
  });
}

/** A temporary directory removed after `body`. */
export async function withTempDir<T>(body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "attnkit-io-" });
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}
