/**
 * Download-once into the cache, safe under concurrency and change: `fetchToCache(url)` returns
 * the path of a complete, verified copy of `url` in the cache directory.
 *
 * Guarantees (each has a test in tests/models_download.test.ts or tests/bad_inputs/io_*.test.ts):
 * - One writer per entry: the writer holds `<file>.attnkit-lock` (exclusive create). Other
 *   callers, in this process or another, wait and then return the finished file. A lock whose
 *   holder stopped refreshing it (mtime older than `lockStaleMs`; the holder touches it every
 *   `lockStaleMs / 4`), or whose holder is known dead (same host, Linux, no `/proc/<pid>`), is
 *   taken over.
 * - Each attempt writes its own temporary (`<file>.<pid>.<random>.attnkit-tmp`); only a complete
 *   file whose length matches the declared one (Content-Length / Content-Range) and whose sha256
 *   matches `sha256` (when given) is renamed atomically to the final name.
 * - A body whose end cannot be told from a dropped connection (no Content-Length, not chunked:
 *   "close-delimited") is cached only when `sha256` vouches for it.
 * - A digest sidecar is trusted only while the file is the one it was computed on (size, mtime,
 *   inode); otherwise the bytes are hashed again.
 * - Resume: an interrupted download is kept as `<file>.part` only when the server gave a strong
 *   ETag or a Last-Modified date; the next attempt sends `Range` with `If-Range`, and appends only
 *   when the answer is a 206 for exactly the bytes asked for, with the same validator and total.
 *   Anything else starts from byte 0.
 * - Timeouts: no byte for `idleTimeoutMs` (default 60 s) interrupts the attempt (resumable); the
 *   whole call is bounded by `totalTimeoutMs` (default 6 h).
 * - `https:` is required for every host that is not this machine (localhost, 127.0.0.0/8, ::1),
 *   on the first request and on every redirect, unless `allowInsecureHttp` is set.
 * - Redirects are followed by hand (at most `maxRedirects`, default 10, loops refused); the
 *   caller's `headers` (credentials) go only to the origin of `url`, never to another host.
 * - Errors are {@link AttnkitError}s naming the url or `cacheDir`: unwritable or non-directory
 *   cache, HTTP 4xx/5xx ({@link HttpStatusError}), redirect loops, timeouts; an error says a
 *   `.part` is kept only when one is.
 *
 * `Accept-Encoding: identity` is sent so byte offsets and Content-Length refer to the file itself,
 * not to a compressed transfer.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { AttnkitError } from "../errors.ts";
import {
  cachePathFor,
  currentDigest,
  defaultCacheDir,
  isFile,
  isLoopbackUrl,
  isPrivateUrl,
  LOCK_SUFFIX,
  normaliseSha256,
  PART_SUFFIX,
  removeIfPresent,
  RESUME_SUFFIX,
  sha256File,
  TMP_SUFFIX,
  uniqueTag,
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
  /** Aborts the transfer (or the wait for another writer); a resumable part is kept. */
  signal?: AbortSignal;
  /** How many times one call resumes after the connection drops or stalls (default 3). */
  retries?: number;
  /** Extra request headers (e.g. `Authorization`); sent only to the origin of `url`. */
  headers?: HeadersInit;
  /** Milliseconds without a byte (or without response headers) before an attempt is cut (60000). */
  idleTimeoutMs?: number;
  /** Milliseconds the whole call may take, waiting and retries included (default 6 hours). */
  totalTimeoutMs?: number;
  /** Allow plain `http:` to hosts other than this machine (default false: https required). */
  allowInsecureHttp?: boolean;
  /** Most redirects followed (default 10). */
  maxRedirects?: number;
  /** A lock not refreshed for this many milliseconds is stale and taken over (default 60000). */
  lockStaleMs?: number;
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

/** Why an attempt stopped part-way (dropped, stalled, cut short); another attempt may resume. */
class Interrupted extends Error {
  constructor(readonly why: string, readonly done: number, readonly total: number | undefined) {
    super(why);
  }
}

/** What a resumable part was fetched against: a resume must see the same. */
interface ResumeRecord {
  url: string;
  etag?: string;
  lastModified?: string;
  total?: number;
}

const MINUTE = 60_000;

function positive(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new AttnkitError(name, `expected a finite number of milliseconds > 0, got ${v}`);
  }
  return v;
}

function count(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new AttnkitError(name, `expected an integer ≥ 0, got ${v}`);
  }
  return v;
}

/** Options checked once, with defaults filled in. */
interface Settings {
  url: string;
  final: string;
  cacheDir: string;
  expected: string | undefined;
  retries: number;
  idleMs: number;
  deadline: number;
  totalMs: number;
  staleMs: number;
  maxRedirects: number;
  allowInsecureHttp: boolean;
  headers: Headers;
  signal?: AbortSignal;
  onProgress?: ProgressCallback;
}

function settings(url: string, opts: FetchToCacheOptions): Settings {
  if (typeof url !== "string") {
    throw new AttnkitError("url", `expected a string, got ${typeof url}`);
  }
  if (opts.cacheDir !== undefined && (typeof opts.cacheDir !== "string" || opts.cacheDir === "")) {
    throw new AttnkitError(
      "cacheDir",
      `expected a directory path, got ${JSON.stringify(opts.cacheDir)}`,
    );
  }
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const final = cachePathFor(url, cacheDir);
  const allowInsecureHttp = opts.allowInsecureHttp === true;
  const parsed = new URL(url);
  checkScheme(parsed, url, allowInsecureHttp);
  if (parsed.username || parsed.password) {
    throw new AttnkitError(
      "url",
      `${parsed.origin}/…: a user name or password in the URL is refused (it would be logged and ` +
        `sent on redirects); pass credentials in headers`,
    );
  }
  const totalMs = positive(opts.totalTimeoutMs, "totalTimeoutMs", 6 * 60 * MINUTE);
  let headers: Headers;
  try {
    headers = new Headers(opts.headers);
  } catch (e) {
    throw new AttnkitError("headers", `not valid request headers: ${(e as Error).message}`);
  }
  return {
    url,
    final,
    cacheDir,
    expected: opts.sha256 === undefined ? undefined : normaliseSha256(opts.sha256),
    retries: count(opts.retries, "retries", 3),
    idleMs: positive(opts.idleTimeoutMs, "idleTimeoutMs", MINUTE),
    totalMs,
    deadline: Date.now() + totalMs,
    staleMs: positive(opts.lockStaleMs, "lockStaleMs", MINUTE),
    maxRedirects: count(opts.maxRedirects, "maxRedirects", 10),
    allowInsecureHttp,
    headers,
    signal: opts.signal,
    onProgress: opts.onProgress,
  };
}

/** https for every host but this machine, unless the caller opted in. */
function checkScheme(u: URL, url: string, allowInsecureHttp: boolean): void {
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new AttnkitError("url", `expected an http(s) URL, got ${u.protocol} in ${url}`);
  }
  if (u.protocol === "http:" && !isLoopbackUrl(u) && !allowInsecureHttp) {
    throw new AttnkitError(
      "url",
      `${u.href} is plain http to a host other than this machine; use https ` +
        `(or pass allowInsecureHttp: true to accept unauthenticated, unencrypted bytes)`,
    );
  }
}

/**
 * Downloads `url` once into the cache and returns the cached file's path. A file already cached
 * is returned without a request (after checking its digest when `sha256` is given). See the
 * module doc for the guarantees under concurrency, interruption and change.
 *
 * @example
 * ```ts ignore
 * const path = await fetchToCache("https://huggingface.co/org/repo/resolve/main/unet/model.onnx", {
 *   sha256: "…64 hex digits…",
 *   onProgress: progressBar("unet/model.onnx"),
 * });
 * ```
 */
export async function fetchToCache(url: string, opts: FetchToCacheOptions = {}): Promise<string> {
  const s = settings(url, opts);
  if (await cachedAndValid(s)) return s.final;
  await prepareDirectory(s);
  const lock = await acquireLock(s);
  if (lock === "done") return s.final;
  try {
    if (await cachedAndValid(s)) return s.final;
    await removeIfPresent(s.final);
    await removeOrphans(s);
    await download(s);
    return s.final;
  } finally {
    await lock.release();
  }
}

/** Whether the final file exists and (when a digest is expected) has it. */
async function cachedAndValid(s: Settings): Promise<boolean> {
  let file: boolean;
  try {
    file = await isFile(s.final);
  } catch (e) {
    throw cacheError(s, s.final, e);
  }
  if (!file) return false;
  if (s.expected === undefined) return true;
  return (await currentDigest(s.final)) === s.expected;
}

function cacheError(s: Settings, path: string, e: unknown): AttnkitError {
  const msg = e instanceof Error ? e.message : String(e);
  const why = e instanceof Deno.errors.NotADirectory
    ? "a part of that path is a file, not a directory"
    : /read-only/i.test(msg)
    ? "the file system is read-only"
    : e instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : msg;
  return new AttnkitError(
    "cacheDir",
    `cannot use ${path} in the cache ${s.cacheDir}: ${why} (${msg})`,
  );
}

/** Makes the entry's folder, turning file-system refusals into one clear error. */
async function prepareDirectory(s: Settings): Promise<void> {
  try {
    const info = await Deno.stat(s.cacheDir).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw e;
    });
    if (info && !info.isDirectory) {
      throw new AttnkitError("cacheDir", `${s.cacheDir} exists and is not a directory`);
    }
    await Deno.mkdir(dirname(s.final), { recursive: true });
  } catch (e) {
    if (e instanceof AttnkitError) throw e;
    throw cacheError(s, dirname(s.final), e);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** A held lock: `release` removes it if it is still ours. */
interface Lock {
  release(): Promise<void>;
}

/**
 * Takes the entry's lock, or waits for its holder and returns "done" when the holder left a
 * valid final file. A lock whose mtime is older than `staleMs` is taken over: it is renamed away
 * (only one taker can win that rename) and checked to be the very lock judged stale.
 */
async function acquireLock(s: Settings): Promise<Lock | "done"> {
  const path = s.final + LOCK_SUFFIX;
  const nonce = uniqueTag();
  const content = JSON.stringify({
    pid: Deno.pid,
    host: hostName(),
    nonce,
    since: new Date().toISOString(),
  });
  for (let wait = 20;;) {
    try {
      const f = await Deno.open(path, { write: true, createNew: true });
      try {
        await f.write(new TextEncoder().encode(content));
      } finally {
        f.close();
      }
      return heldLock(path, content, s.staleMs);
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw cacheError(s, path, e);
    }
    if (await cachedAndValid(s)) {
      // The holder may still be writing the digest record; the file itself is final.
      return "done";
    }
    let info: Deno.FileInfo | undefined;
    let seen = "";
    try {
      info = await Deno.stat(path);
      seen = await Deno.readTextFile(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) continue; // released meanwhile: try again now
      throw cacheError(s, path, e);
    }
    const age = Date.now() - (info.mtime?.getTime() ?? 0);
    if (age > s.staleMs || await holderIsGone(seen)) {
      const aside = `${path}.${nonce}.stale`;
      try {
        await Deno.rename(path, aside);
        const taken = await Deno.readTextFile(aside);
        if (taken !== seen) {
          // Someone replaced the stale lock between our look and our rename: put theirs back.
          await Deno.link(aside, path).catch(() => {});
        }
        await removeIfPresent(aside);
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw cacheError(s, path, e);
      }
      continue;
    }
    if (Date.now() > s.deadline) {
      throw new AttnkitError(
        s.url,
        `waited ${s.totalMs} ms (totalTimeoutMs) for another download of this file to finish ` +
          `(lock ${path})`,
      );
    }
    await sleep(wait, s.signal);
    wait = Math.min(wait * 2, 250);
  }
}

function hostName(): string | undefined {
  try {
    return Deno.hostname();
  } catch {
    return undefined; // no --allow-sys: the lock is judged by its heartbeat alone
  }
}

/**
 * Whether a lock's holder is known to be dead: same host, Linux, and no `/proc/<pid>`. A process
 * stopped by Ctrl-C or `kill -9` cannot remove its lock; this spares the next caller the wait
 * for the heartbeat to go stale. Anywhere else the heartbeat rule alone decides.
 */
async function holderIsGone(lockText: string): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  let holder: { pid?: unknown; host?: unknown };
  try {
    holder = JSON.parse(lockText);
  } catch {
    return false;
  }
  const host = hostName();
  if (!Number.isSafeInteger(holder.pid) || host === undefined || holder.host !== host) return false;
  try {
    await Deno.stat(`/proc/${holder.pid}`);
    return false;
  } catch (e) {
    return e instanceof Deno.errors.NotFound;
  }
}

function heldLock(path: string, content: string, staleMs: number): Lock {
  const beat = setInterval(() => {
    const now = new Date();
    Deno.utime(path, now, now).catch(() => {});
  }, Math.max(10, staleMs / 4));
  return {
    async release() {
      clearInterval(beat);
      try {
        if ((await Deno.readTextFile(path)) === content) await Deno.remove(path);
      } catch {
        // Gone already (taken over as stale): nothing of ours to remove.
      }
    },
  };
}

/**
 * Removes temporaries of this entry that their writers left behind: those of a process known to
 * be gone (see {@link holderIsGone}) and any not touched for `lockStaleMs`.
 */
async function removeOrphans(s: Settings): Promise<void> {
  const dir = dirname(s.final);
  const prefix = basename(s.final) + ".";
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !e.name.startsWith(prefix) || !e.name.endsWith(TMP_SUFFIX)) continue;
      const p = `${dir}/${e.name}`;
      const info = await Deno.stat(p).catch(() => undefined);
      const pid = Number(/\.(\d+)\.[0-9a-f]+\.attnkit-tmp$/.exec(e.name)?.[1]);
      const writerGone = await holderIsGone(JSON.stringify({ pid, host: hostName() }));
      const old = info !== undefined && Date.now() - (info.mtime?.getTime() ?? 0) > s.staleMs;
      if (writerGone || old) await removeIfPresent(p);
    }
  } catch {
    // Best effort: a leftover temporary costs disk space, never correctness.
  }
}

async function readResume(s: Settings): Promise<ResumeRecord | undefined> {
  try {
    const r = JSON.parse(await Deno.readTextFile(s.final + RESUME_SUFFIX)) as ResumeRecord;
    if (r?.url !== s.url || (typeof r.etag !== "string" && typeof r.lastModified !== "string")) {
      return undefined;
    }
    return r;
  } catch {
    return undefined;
  }
}

/** Size of a file, 0 when there is none. */
async function sizeOf(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return 0;
    throw e;
  }
}

/** The whole download under the lock: claim a resumable part, transfer, verify, rename. */
async function download(s: Settings): Promise<void> {
  const tmp = `${s.final}.${uniqueTag()}${TMP_SUFFIX}`;
  let resume = await readResume(s);
  const part = s.final + PART_SUFFIX;
  try {
    if (resume && (await sizeOf(part)) > 0) await Deno.rename(part, tmp);
    else resume = undefined;
  } catch {
    resume = undefined;
  }
  await removeIfPresent(part);
  await removeIfPresent(s.final + RESUME_SUFFIX);
  const state: AttemptState = { resume, framed: false };
  let ok = false;
  try {
    for (let attempt = 0;; attempt++) {
      try {
        await transfer(s, tmp, state);
        break;
      } catch (e) {
        const retry = e instanceof Interrupted && attempt < s.retries && !s.signal?.aborted &&
          Date.now() < s.deadline;
        if (retry) continue;
        if (e instanceof Interrupted) {
          const kept = await keepPart(s, tmp, state.resume);
          throw new AttnkitError(
            s.url,
            `download interrupted after ${e.done}${
              e.total === undefined ? "" : ` of ${e.total}`
            } ` +
              `bytes (${e.why}); ` +
              (kept
                ? `${part} is kept and the next call resumes it`
                : "nothing was kept (the server gave no validator to resume against)"),
          );
        }
        if (s.signal?.aborted) await keepPart(s, tmp, state.resume);
        throw e;
      }
    }
    if (!state.framed && s.expected === undefined) {
      throw new AttnkitError(
        s.url,
        "the server sent no Content-Length and ended the body by closing the connection, so a " +
          "truncated file cannot be told from a complete one; nothing was cached (pass sha256 " +
          "to accept it by its digest)",
      );
    }
    const actual = await sha256File(tmp);
    if (s.expected !== undefined && actual !== s.expected) {
      throw new AttnkitError(
        s.url,
        `sha256 mismatch: expected ${s.expected}, got ${actual}; the download was deleted`,
      );
    }
    await Deno.rename(tmp, s.final);
    ok = true;
    await writeRecordedDigest(s.final, actual).catch(() => {});
  } finally {
    if (!ok) await removeIfPresent(tmp);
  }
}

/** Moves an interrupted attempt to `<file>.part` when it can be resumed; says whether it did. */
async function keepPart(
  s: Settings,
  tmp: string,
  resume: ResumeRecord | undefined,
): Promise<boolean> {
  if (resume === undefined || (await sizeOf(tmp)) === 0) return false;
  try {
    await Deno.writeTextFile(s.final + RESUME_SUFFIX, JSON.stringify(resume));
    await Deno.rename(tmp, s.final + PART_SUFFIX);
    return true;
  } catch {
    await removeIfPresent(s.final + RESUME_SUFFIX);
    return false;
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

/** What attempts share: the validators the bytes in the temporary were fetched against. */
interface AttemptState {
  resume: ResumeRecord | undefined;
  /** The last transfer's body had a declared or framed end. */
  framed: boolean;
}

/** Cuts a request when no byte arrives for `idleMs` or the call's deadline passes. */
class Watchdog {
  readonly ctl = new AbortController();
  readonly signal: AbortSignal;
  reason: string | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #deadline: ReturnType<typeof setTimeout> | undefined;
  constructor(private readonly s: Settings) {
    this.signal = s.signal ? AbortSignal.any([s.signal, this.ctl.signal]) : this.ctl.signal;
    this.#deadline = setTimeout(
      () => this.#cut(`took longer than ${s.totalMs} ms (totalTimeoutMs)`),
      Math.max(0, s.deadline - Date.now()),
    );
    this.kick();
  }
  kick(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.#cut(`no data for ${this.s.idleMs} ms (idleTimeoutMs)`),
      this.s.idleMs,
    );
  }
  #cut(reason: string): void {
    this.reason ??= reason;
    this.ctl.abort(new Error(reason));
  }
  stop(): void {
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
  }
}

/**
 * Follows redirects by hand: scheme checked on each hop, caller headers only on the origin, and
 * no hop from a public host to a private or local address.
 */
async function request(s: Settings, extra: Headers, dog: Watchdog): Promise<Response> {
  const origin = new URL(s.url).origin;
  const seen = [s.url];
  let at = s.url;
  for (;;) {
    const headers = new Headers(new URL(at).origin === origin ? s.headers : undefined);
    for (const [k, v] of extra) headers.set(k, v);
    headers.set("Accept-Encoding", "identity");
    const res = await fetch(at, { headers, signal: dog.signal, redirect: "manual" });
    if (res.status < 300 || res.status >= 400 || res.status === 304) return res;
    const location = res.headers.get("location");
    await res.body?.cancel();
    if (location === null) throw new HttpStatusError(at, res.status, "redirect without Location");
    let next: URL;
    try {
      next = new URL(location, at);
    } catch {
      throw new AttnkitError(s.url, `redirect to an invalid URL ${JSON.stringify(location)}`);
    }
    next.hash = "";
    checkScheme(next, s.url, s.allowInsecureHttp);
    // A public server must not steer the download into this machine's or the LAN's services.
    if (isPrivateUrl(next) && !isPrivateUrl(s.url)) {
      throw new AttnkitError(
        s.url,
        `redirect from a public host to a private or local address ${next.origin} is refused`,
      );
    }
    if (seen.includes(next.href)) {
      throw new AttnkitError(
        s.url,
        `redirect loop: ${[...seen, next.href].join(" → ")}; nothing was downloaded`,
      );
    }
    if (seen.length > s.maxRedirects) {
      throw new AttnkitError(
        s.url,
        `more than ${s.maxRedirects} redirects (maxRedirects): ${seen.join(" → ")} → …`,
      );
    }
    seen.push(next.href);
    at = next.href;
  }
}

function strongEtag(res: Response): string | undefined {
  const e = res.headers.get("etag");
  return e && !e.startsWith("W/") ? e : undefined;
}

/** One HTTP exchange that brings `tmp` to the full file, resuming when its validators allow. */
async function transfer(s: Settings, tmp: string, state: AttemptState): Promise<void> {
  const have = state.resume ? await sizeOf(tmp) : 0;
  const extra = new Headers();
  if (have > 0 && state.resume) {
    extra.set("Range", `bytes=${have}-`);
    extra.set("If-Range", state.resume.etag ?? state.resume.lastModified!);
  }
  const dog = new Watchdog(s);
  try {
    let res: Response;
    try {
      res = await request(s, extra, dog);
    } catch (e) {
      if (e instanceof AttnkitError || s.signal?.aborted) throw e;
      throw new Interrupted(dog.reason ?? (e as Error).message, have, state.resume?.total);
    }
    if (res.status === 416 && have > 0) {
      // Past the end, although If-Range matched: whole when the total equals what we have.
      const total = parseContentRange(res.headers.get("content-range"))?.total ??
        Number(/\/(\d+)$/.exec(res.headers.get("content-range") ?? "")?.[1] ?? NaN);
      await res.body?.cancel();
      if (total === have && state.resume?.total === have) {
        state.framed = true;
        s.onProgress?.(have, have);
        return;
      }
      state.resume = undefined;
      return await transfer(s, tmp, state);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new HttpStatusError(s.url, res.status, res.statusText);
    }
    const encoded = (res.headers.get("content-encoding") ?? "identity") !== "identity";
    const lengthHeader = res.headers.get("content-length");
    const length = lengthHeader !== null && /^\d+$/.test(lengthHeader.trim()) && !encoded
      ? Number(lengthHeader)
      : undefined;
    let offset = 0;
    let total: number | undefined;
    if (res.status === 206) {
      const range = parseContentRange(res.headers.get("content-range"));
      const etag = strongEtag(res);
      const same = have > 0 && range !== undefined && range.start === have &&
        range.total !== undefined && range.end === range.total - 1 &&
        range.total === state.resume?.total &&
        (state.resume?.etag === undefined || etag === undefined || etag === state.resume.etag) &&
        (length === undefined || length === range.end - range.start + 1);
      if (!same) {
        // Not the continuation of our bytes: discard them and fetch the whole file.
        await res.body?.cancel();
        if (have === 0) throw new HttpStatusError(s.url, 206, "unexpected partial content");
        state.resume = undefined;
        return await transfer(s, tmp, state);
      }
      offset = have;
      total = range.total;
    } else {
      total = length;
      const etag = strongEtag(res);
      const lastModified = res.headers.get("last-modified") ?? undefined;
      state.resume = etag || lastModified
        ? { url: s.url, etag, lastModified: etag ? undefined : lastModified, total }
        : undefined;
    }
    // The end of the body is known when the HTTP layer frames it: a Content-Length (checked by
    // the HTTP client even for a compressed transfer) or chunked encoding's last chunk.
    const chunked = /chunked/i.test(res.headers.get("transfer-encoding") ?? "");
    state.framed = total !== undefined || chunked || lengthHeader !== null;
    if (state.resume && total === undefined) state.resume = undefined; // resume needs a total
    const file = await Deno.open(tmp, {
      write: true,
      create: true,
      append: offset > 0,
      truncate: offset === 0,
    });
    let done = offset;
    s.onProgress?.(done, total);
    try {
      if (res.body) {
        for await (const chunk of res.body) {
          dog.kick();
          if (total !== undefined && done + chunk.length > total) {
            throw new AttnkitError(
              s.url,
              `the server sent more than the ${total} bytes it declared; nothing was cached`,
            );
          }
          for (let n = 0; n < chunk.length;) n += await file.write(chunk.subarray(n));
          done += chunk.length;
          s.onProgress?.(done, total);
        }
      }
    } catch (e) {
      if (e instanceof AttnkitError || (s.signal?.aborted && dog.reason === undefined)) throw e;
      throw new Interrupted(dog.reason ?? (e as Error).message, done, total);
    } finally {
      file.close();
    }
    if (total !== undefined && done < total) {
      throw new Interrupted("body ended early", done, total);
    }
    if (total === undefined) s.onProgress?.(done, done);
  } finally {
    dog.stop();
  }
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
