/**
 * Download-once into the cache: `fetchToCache(url)` streams to `<file>.part`, resumes an
 * interrupted part with an HTTP Range request, checks sha256, and only then renames the part to
 * its final name, so an interrupted or corrupted download never sits under the final name.
 *
 * Servers that ignore Range and answer 200 are handled by starting the part again; a 416 on a
 * complete part is accepted. `Accept-Encoding: identity` is sent so byte offsets and
 * Content-Length refer to the file itself, not to a compressed transfer.
 *
 * @module
 */
import { dirname } from "node:path";
import { AttnkitError } from "../errors.ts";
import {
  cachePathFor,
  defaultCacheDir,
  isFile,
  normaliseSha256,
  PART_SUFFIX,
  readRecordedDigest,
  removeIfPresent,
  sha256File,
  writeRecordedDigest,
} from "./cache.ts";

/** Called as bytes arrive; `total` is undefined while unknown, and the last call has done = total. */
export type ProgressCallback = (done: number, total: number | undefined) => void;

/** Options for {@link fetchToCache}. */
export interface FetchToCacheOptions {
  /** Cache directory (default {@link defaultCacheDir}: `$ATTNKIT_CACHE` or `~/.cache/attnkit`). */
  cacheDir?: string;
  /** Expected sha256 (hex). A mismatch deletes the download and throws. */
  sha256?: string;
  /** Progress in bytes; see {@link progressBar} for a ready-made stderr bar. */
  onProgress?: ProgressCallback;
  /** Aborts the transfer; the `.part` file is kept so a later call resumes it. */
  signal?: AbortSignal;
  /** How many times one call resumes after the connection drops (default 3). */
  retries?: number;
  /** Extra request headers (e.g. `Authorization` for gated repositories). */
  headers?: HeadersInit;
}

/** An HTTP answer other than success; `status` is the HTTP status code. */
export class HttpStatusError extends AttnkitError {
  /** HTTP status code of the answer. */
  readonly status: number;
  /** Builds the error for `url` answered with `status`. */
  constructor(url: string, status: number, statusText: string) {
    super(url, `HTTP ${status}${statusText ? ` ${statusText}` : ""}`);
    this.name = "HttpStatusError";
    this.status = status;
  }
}

/** The transfer stopped part-way (connection dropped, body too short); the part file is kept. */
class InterruptedError extends AttnkitError {
  constructor(url: string, part: string, done: number, total: number | undefined, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause ?? "body ended early");
    super(
      url,
      `download interrupted after ${done}${total === undefined ? "" : ` of ${total}`} bytes ` +
        `(${why}); ${part} is kept and the next call resumes it`,
    );
    this.name = "InterruptedError";
  }
}

/**
 * Downloads `url` once into the cache and returns the cached file's path. A file already cached
 * is returned without a request (after checking its recorded digest when `sha256` is given).
 */
export async function fetchToCache(url: string, opts: FetchToCacheOptions = {}): Promise<string> {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const final = cachePathFor(url, cacheDir);
  const expected = opts.sha256 === undefined ? undefined : normaliseSha256(opts.sha256);
  if (await isFile(final)) {
    if (expected === undefined) return final;
    let recorded = await readRecordedDigest(final);
    if (recorded === undefined) {
      recorded = await sha256File(final);
      await writeRecordedDigest(final, recorded);
    }
    if (recorded === expected) return final;
    // A stale entry (the manifest changed, or the file was edited): fetch it again.
    await removeIfPresent(final);
  }
  await Deno.mkdir(dirname(final), { recursive: true });
  const part = final + PART_SUFFIX;
  const retries = opts.retries ?? 3;
  for (let attempt = 0;; attempt++) {
    try {
      await transfer(url, part, opts);
      break;
    } catch (e) {
      if (e instanceof InterruptedError && attempt < retries && !opts.signal?.aborted) continue;
      throw e;
    }
  }
  const actual = await sha256File(part);
  if (expected !== undefined && actual !== expected) {
    await removeIfPresent(part);
    throw new AttnkitError(
      url,
      `sha256 mismatch: expected ${expected}, got ${actual}; the download was deleted`,
    );
  }
  await Deno.rename(part, final);
  await writeRecordedDigest(final, actual);
  return final;
}

/** Size of the part file, 0 when there is none. */
async function partSize(part: string): Promise<number> {
  try {
    return (await Deno.stat(part)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** Parses `Content-Range: bytes a-b/total` (total may be `*`). */
export function parseContentRange(
  value: string | null,
): { start: number; end: number; total: number | undefined } | undefined {
  const m = value?.match(/^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i);
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === "*" ? undefined : Number(m[3]) };
}

/** One HTTP request that brings `part` to the full file (resuming when it already has bytes). */
async function transfer(url: string, part: string, opts: FetchToCacheOptions): Promise<void> {
  const have = await partSize(part);
  const headers = new Headers(opts.headers);
  headers.set("Accept-Encoding", "identity");
  if (have > 0) headers.set("Range", `bytes=${have}-`);
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: opts.signal });
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new InterruptedError(url, part, have, undefined, e);
  }
  if (res.status === 416 && have > 0) {
    // Asked for bytes past the end: either the part is already whole, or it is longer than the
    // file now is; in the second case start over.
    const total = parseContentRange(res.headers.get("content-range"))?.total ??
      Number(/\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1] ?? NaN);
    await res.body?.cancel();
    if (total === have) {
      opts.onProgress?.(have, have);
      return;
    }
    await removeIfPresent(part);
    return transfer(url, part, opts);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new HttpStatusError(url, res.status, res.statusText);
  }
  let offset = 0;
  let total: number | undefined;
  if (res.status === 206) {
    const range = parseContentRange(res.headers.get("content-range"));
    if (have === 0 || range === undefined || range.start !== have) {
      // A range we did not ask for: discard it and fetch the whole file.
      await res.body?.cancel();
      await removeIfPresent(part);
      if (have === 0) throw new HttpStatusError(url, 206, "unexpected partial content");
      return transfer(url, part, opts);
    }
    offset = have;
    total = range.total;
  } else {
    // 200: the server ignored Range (or we sent none), so the part restarts from byte 0.
    const length = res.headers.get("content-length");
    const encoded = (res.headers.get("content-encoding") ?? "identity") !== "identity";
    total = length !== null && !encoded ? Number(length) : undefined;
  }
  const file = await Deno.open(part, {
    write: true,
    create: true,
    append: offset > 0,
    truncate: offset === 0,
  });
  let done = offset;
  opts.onProgress?.(done, total);
  try {
    if (res.body) {
      for await (const chunk of res.body) {
        for (let n = 0; n < chunk.length;) n += await file.write(chunk.subarray(n));
        done += chunk.length;
        opts.onProgress?.(done, total);
      }
    }
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    throw new InterruptedError(url, part, done, total, e);
  } finally {
    file.close();
  }
  if (total !== undefined && done < total) throw new InterruptedError(url, part, done, total, null);
  if (total === undefined || done > total) opts.onProgress?.(done, done);
}

/** Options for {@link progressBar}. */
export interface ProgressBarOptions {
  /** Draw at all (default: only when stderr is a terminal). */
  enabled?: boolean;
  /** Where text goes (default stderr). */
  write?: (text: string) => void;
  /** Bar width in characters (default 24). */
  width?: number;
  /** Least time between redraws in ms (default 100); the final state is always drawn. */
  intervalMs?: number;
}

/** Formats bytes with binary units, e.g. `3.4 GiB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** One line of progress text: `label [#####-----]  42%  1.2 MiB / 2.9 MiB`. */
export function formatProgress(
  label: string,
  done: number,
  total: number | undefined,
  width = 24,
): string {
  if (total === undefined || total <= 0) return `${label}  ${formatBytes(done)}`;
  const frac = Math.min(1, done / total);
  const filled = Math.round(frac * width);
  const pct = String(Math.floor(frac * 100)).padStart(3);
  return `${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${pct}%  ` +
    `${formatBytes(done)} / ${formatBytes(total)}`;
}

function stderrIsTerminal(): boolean {
  try {
    return Deno.stderr.isTerminal();
  } catch {
    return false;
  }
}

function writeStderr(text: string): void {
  const bytes = new TextEncoder().encode(text);
  for (let n = 0; n < bytes.length;) n += Deno.stderr.writeSync(bytes.subarray(n));
}

/**
 * A {@link ProgressCallback} drawing a one-line bar on stderr, redrawn in place; it draws only
 * when stderr is a terminal unless `enabled` says otherwise.
 */
export function progressBar(label: string, opts: ProgressBarOptions = {}): ProgressCallback {
  if (!(opts.enabled ?? stderrIsTerminal())) return () => {};
  const write = opts.write ?? writeStderr;
  const interval = opts.intervalMs ?? 100;
  let last = -Infinity;
  let finished = false;
  return (done, total) => {
    if (finished) return;
    const complete = total !== undefined && done >= total;
    const now = performance.now();
    if (!complete && now - last < interval) return;
    last = now;
    write(`\r${formatProgress(label, done, total, opts.width)}${complete ? "\n" : ""}`);
    finished = complete;
  };
}
