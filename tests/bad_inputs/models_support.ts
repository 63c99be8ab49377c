/**
 * Helpers for the model-side bad-input corpus (issue 10, part A): a tally of cases (tried /
 * clear error / correct value), assertions for "a clear AttnkitError naming X", and throwaway
 * copies of the shipped model folders with one thing changed.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AttnkitError } from "../../lib/errors.ts";

/** A parsed JSON config being edited by a case (its shape is whatever the file holds). */
// deno-lint-ignore no-explicit-any
export type JsonObject = Record<string, any>;

/** Where the crafted ONNX files of `make_model_fixtures.py` live. */
export const FIXTURES = new URL("./fixtures/", import.meta.url);
/** The repository root. */
export const REPO = new URL("../../", import.meta.url);

/** What a clear error must say. */
export interface Want {
  /** The error's `argument` (exact string, or a pattern). */
  argument?: string | RegExp;
  /** Pieces the message must contain. */
  says?: (string | RegExp)[];
}

/** Counts one test file's cases by outcome. */
export class Corpus {
  tried = 0;
  clear = 0;
  correct = 0;
  readonly failures: string[] = [];
  constructor(readonly name: string) {}

  /** The case must throw an AttnkitError matching `want`. */
  async rejects(label: string, run: () => unknown, want: Want): Promise<AttnkitError> {
    this.tried++;
    let err: unknown;
    try {
      await run();
    } catch (e) {
      err = e;
    }
    try {
      assert.ok(err !== undefined, `${label}: expected an AttnkitError, but it succeeded`);
      assert.ok(
        err instanceof AttnkitError,
        `${label}: expected an AttnkitError, got ${(err as Error)?.name}: ${
          (err as Error)?.message
        }`,
      );
      const e = err as AttnkitError;
      if (want.argument !== undefined) {
        if (typeof want.argument === "string") {
          assert.equal(e.argument, want.argument, `${label}: wrong argument in "${e.message}"`);
        } else assert.match(e.argument, want.argument, `${label}: argument of "${e.message}"`);
      }
      for (const s of want.says ?? []) {
        if (typeof s === "string") {
          assert.ok(
            e.message.includes(s),
            `${label}: message lacks ${JSON.stringify(s)}: ${e.message}`,
          );
        } else assert.match(e.message, s, `${label}: message`);
      }
    } catch (failure) {
      this.failures.push(label);
      throw failure;
    }
    this.clear++;
    return err as AttnkitError;
  }

  /** The case must succeed and `check` its value. */
  async works<T>(label: string, run: () => T | Promise<T>, check: (v: T) => void): Promise<T> {
    this.tried++;
    try {
      const v = await run();
      check(v);
      this.correct++;
      return v;
    } catch (failure) {
      this.failures.push(label);
      throw failure;
    }
  }

  /** One line for the report. */
  summary(): string {
    return `${this.name}: ${this.tried} tried, ${this.clear} clear errors, ${this.correct} correct values` +
      (this.failures.length ? `, ${this.failures.length} FAILED` : "");
  }

  /** Registers the closing test: every case ended as a clear error or a correct value. */
  close(minimum: number): void {
    Deno.test(`${this.name}: corpus summary`, () => {
      console.log(this.summary());
      assert.equal(this.failures.length, 0, `failed: ${this.failures.join("; ")}`);
      assert.equal(this.tried, this.clear + this.correct);
      assert.ok(this.tried >= minimum, `expected at least ${minimum} cases, ran ${this.tried}`);
    });
  }
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(join(from, e.name), join(to, e.name));
    else if (e.isFile) await Deno.copyFile(join(from, e.name), join(to, e.name));
  }
}

/** A temp copy of `weights/shapes` (ONNX and JSON files only) with `config.json` edited. */
export async function shapesCopy(
  edit: (config: JsonObject) => void = () => {},
  into?: string,
): Promise<string> {
  const dir = into ?? await Deno.makeTempDir({ prefix: "attnkit-bad-shapes-" });
  const src = new URL("weights/shapes/", REPO).pathname;
  for (
    const f of [
      "config.json",
      "tokenizer.json",
      "text_encoder.onnx",
      "unet.onnx",
      "vae_decoder.onnx",
    ]
  ) {
    await Deno.copyFile(join(src, f), join(dir, f));
  }
  const path = join(dir, "config.json");
  const config = JSON.parse(await Deno.readTextFile(path));
  edit(config);
  await Deno.writeTextFile(path, JSON.stringify(config));
  return dir;
}

/** A temp copy of `tests/fixtures/hf_tiny`, then `edit(dir)`. */
export async function hfCopy(
  edit: (dir: string) => void | Promise<void> = () => {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "attnkit-bad-hf-" });
  await copyTree(new URL("tests/fixtures/hf_tiny/", REPO).pathname, dir);
  await edit(dir);
  return dir;
}

/** Edits a JSON file in place. */
export async function editJson(
  path: string,
  edit: (v: JsonObject) => void,
): Promise<void> {
  const v = JSON.parse(await Deno.readTextFile(path));
  edit(v);
  await Deno.writeTextFile(path, JSON.stringify(v));
}

/** Bytes of a crafted fixture. */
export function fixture(name: string): Promise<Uint8Array> {
  return Deno.readFile(new URL(name, FIXTURES));
}

/** Whether onnxruntime-node loads here (its cases are skipped, not faked, when it does not). */
export async function nodeAvailable(): Promise<boolean> {
  try {
    await import("npm:onnxruntime-node@1.30.0");
    return true;
  } catch {
    return false;
  }
}

/** A 127.0.0.1 server that counts requests (for "no request was made" cases). */
export function countingServer(): { url: string; hits: () => number; close: () => Promise<void> } {
  let n = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    n++;
    return new Response("secret", { status: 200 });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    hits: () => n,
    close: () => server.shutdown(),
  };
}

/** A protobuf varint (for hand-written ONNX bytes). */
export function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 128) {
    out.push((n % 128) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** Concatenates byte parts (arrays or Uint8Arrays) into one Uint8Array. */
export function cat(...parts: (Uint8Array | number[])[]): Uint8Array {
  const arrs = parts.map((p) => (p instanceof Uint8Array ? p : Uint8Array.from(p)));
  const out = new Uint8Array(arrs.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrs) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}
