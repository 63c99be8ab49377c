/**
 * Where downloaded model files live on disk: the cache directory, the path a URL maps to, and
 * the sha256 bookkeeping that lets a cache hit be trusted without re-hashing gigabytes.
 *
 * A URL maps to `<cacheDir>/<host[_port]>/<path segments>`, so a Hugging Face file
 * `https://huggingface.co/org/repo/resolve/main/unet/model.onnx` lands at
 * `<cacheDir>/huggingface.co/org/repo/resolve/main/unet/model.onnx` and stays readable by people.
 * Beside a finished file sits `<file>.attnkit-sha256` with its digest and the identity of the bytes
 * it was computed on (size, modification time, inode); a digest whose identity no longer matches
 * the file is not trusted and the bytes are hashed again. A download in progress is written to a
 * temporary unique to its attempt (`<file>.<pid>.<random>.attnkit-tmp`) and renamed into place
 * only when complete; an interrupted one that can be resumed is kept as `<file>.part` with its
 * validators in `<file>.part.attnkit-resume`. One writer per entry holds `<file>.attnkit-lock`.
 *
 * The host becomes one directory level: it must be a plain host name or address (letters, digits,
 * `.`, `-`, `_`, no `..`), and the resulting path is checked to lie inside the cache directory.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join, relative, resolve } from "node:path";
import { AttnkitError } from "../errors.ts";

/** Suffix of an unfinished download beside its final name. */
export const PART_SUFFIX = ".part";
/** Suffix of the sidecar file that records a finished file's sha256. */
export const DIGEST_SUFFIX = ".attnkit-sha256";
/** Suffix of the sidecar beside `<file>.part` recording the validators a resume must match. */
export const RESUME_SUFFIX = ".part.attnkit-resume";
/** Suffix of the lock file held by the one process writing an entry. */
export const LOCK_SUFFIX = ".attnkit-lock";
/** Suffix of a download attempt's own temporary file. */
export const TMP_SUFFIX = ".attnkit-tmp";

/** The cache directory: `$ATTNKIT_CACHE`, else `~/.cache/attnkit` (`%LOCALAPPDATA%` on Windows). */
export function defaultCacheDir(): string {
  const env = (name: string): string | undefined => {
    try {
      return Deno.env.get(name) || undefined;
    } catch {
      return undefined; // no --allow-env: fall through to the next choice
    }
  };
  const explicit = env("ATTNKIT_CACHE");
  if (explicit) return explicit;
  if (Deno.build.os === "windows") {
    const local = env("LOCALAPPDATA");
    if (local) return join(local, "attnkit", "cache");
  }
  const xdg = env("XDG_CACHE_HOME");
  if (xdg) return join(xdg, "attnkit");
  const home = env("HOME") ?? env("USERPROFILE");
  if (!home) {
    throw new AttnkitError(
      "cacheDir",
      "no cache directory: set ATTNKIT_CACHE or HOME, or pass cacheDir",
    );
  }
  return join(home, ".cache", "attnkit");
}

// Characters Windows forbids in file names, plus controls; replaced so one cache layout works
// everywhere.
// deno-lint-ignore no-control-regex
const UNSAFE = /[<>:"|?*\\\x00-\x1f]/g;

/** The file a URL is cached under: `<cacheDir>/<host[_port]>/<decoded path>` (+ encoded query). */
export function cachePathFor(url: string, cacheDir: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new AttnkitError("url", `not an absolute URL: ${JSON.stringify(url)}`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new AttnkitError("url", `expected an http(s) URL, got ${u.protocol} in ${url}`);
  }
  const segments = u.pathname.split("/").filter((s) => s.length > 0).map((s) => {
    let d: string;
    try {
      d = decodeURIComponent(s);
    } catch {
      d = s;
    }
    if (d === "." || d === ".." || d.includes("/")) {
      throw new AttnkitError("url", `path segment ${JSON.stringify(s)} is not allowed in ${url}`);
    }
    return d.replace(UNSAFE, "_");
  });
  if (segments.length === 0 || u.pathname.endsWith("/")) {
    throw new AttnkitError("url", `expected a URL naming a file, got ${url}`);
  }
  if (u.search) {
    segments[segments.length - 1] += "_" + encodeURIComponent(u.search.slice(1)).replace(
      UNSAFE,
      "_",
    );
  }
  const hostDir = hostDirectory(u, url);
  const path = join(cacheDir, hostDir, ...segments);
  const rel = relative(resolve(cacheDir), resolve(path));
  if (rel === "" || rel.startsWith("..") || rel.startsWith("/")) {
    throw new AttnkitError("url", `${url} maps outside the cache directory ${cacheDir}`);
  }
  return path;
}

/**
 * The directory a URL's host (and port) is cached under. Hosts such as `..`, `.` or an empty
 * name would let a URL step out of the cache directory, so only plain names and addresses pass.
 */
function hostDirectory(u: URL, url: string): string {
  const name = u.hostname.replace(/^\[|\]$/g, "").replace(/:/g, "_").toLowerCase();
  if (
    !/^[a-z0-9_][a-z0-9._-]*$/.test(name) ||
    name.split(".").some((l, i, a) => l === "" && i < a.length - 1)
  ) {
    throw new AttnkitError(
      "url",
      `host ${JSON.stringify(u.hostname)} is not a plain host name or address in ${url}`,
    );
  }
  return u.port ? `${name}_${u.port}` : name;
}

/**
 * Whether `url`'s host is this machine (`localhost`, `*.localhost`, 127.0.0.0/8, `::1`): the only
 * hosts plain `http:` is used with unless the caller opts in.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { models } from "@attnkit/attnkit";
 * assert.equal(models.isLoopbackUrl("http://127.0.0.1:8000/unet.onnx"), true);
 * assert.equal(models.isLoopbackUrl("http://[::1]/"), true);
 * assert.equal(models.isLoopbackUrl("https://example.com/"), false);
 * ```
 */
export function isLoopbackUrl(url: string | URL): boolean {
  const h = (typeof url === "string" ? new URL(url) : url).hostname.toLowerCase().replace(
    /\.$/,
    "",
  );
  return h === "localhost" || h.endsWith(".localhost") || /^127\.\d+\.\d+\.\d+$/.test(h) ||
    h === "[::1]";
}

/**
 * True when a URL's host is this machine or a private, link-local or unspecified address
 * (127/8, 10/8, 172.16/12, 192.168/16, 169.254/16, 0.0.0.0, ::1, fc00::/7, fe80::/10, localhost).
 * Names are judged as written: a public name that resolves to a private address is not caught.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isPrivateUrl } from "./cache.ts";
 * assert(isPrivateUrl("http://192.168.1.5/x") && !isPrivateUrl("https://huggingface.co/x"));
 * ```
 */
export function isPrivateUrl(url: string | URL): boolean {
  const u = typeof url === "string" ? new URL(url) : url;
  if (isLoopbackUrl(u)) return true;
  const h = u.hostname.toLowerCase().replace(/\.$/, "");
  const v4 = h.match(/^(\d+)\.(\d+)\.(\d+)\.(\d+)$/);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) ||
      (a === 169 && b === 254);
  }
  if (h.startsWith("[")) {
    const v6 = h.slice(1, -1);
    return v6 === "::" || /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || v6.startsWith("::ffff:");
  }
  return false;
}

/** sha256 of a file as lower-case hex, read in chunks (constant memory for multi-GB files). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Whether a path exists and is a regular file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** What the digest sidecar records: the digest and the identity of the bytes it was computed on. */
interface DigestRecord {
  sha256: string;
  size: number;
  mtimeMs: number | null;
  ino: number | null;
}

function identity(info: Deno.FileInfo): Omit<DigestRecord, "sha256"> {
  return { size: info.size, mtimeMs: info.mtime?.getTime() ?? null, ino: info.ino ?? null };
}

/**
 * The digest recorded beside a finished cache file, or undefined when none was recorded or the
 * file is no longer the one it was computed on (size, mtime or inode differ), so a replaced or
 * edited file is hashed again rather than trusted.
 */
export async function readRecordedDigest(path: string): Promise<string | undefined> {
  let record: DigestRecord;
  let info: Deno.FileInfo;
  try {
    record = JSON.parse(await Deno.readTextFile(path + DIGEST_SUFFIX));
    info = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound || e instanceof SyntaxError) return undefined;
    throw e;
  }
  if (typeof record?.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(record.sha256)) return undefined;
  const now = identity(info);
  const same = record.size === now.size && record.mtimeMs === now.mtimeMs &&
    record.ino === now.ino;
  return same ? record.sha256 : undefined;
}

/**
 * Records the digest of the bytes now at `path` (computed by the caller on those very bytes),
 * with their identity; written to a temporary and renamed, so a reader never sees half a record.
 */
export async function writeRecordedDigest(path: string, digest: string): Promise<void> {
  const record: DigestRecord = { sha256: digest, ...identity(await Deno.stat(path)) };
  const tmp = `${path}${DIGEST_SUFFIX}.${uniqueTag()}${TMP_SUFFIX}`;
  await Deno.writeTextFile(tmp, JSON.stringify(record) + "\n");
  try {
    await Deno.rename(tmp, path + DIGEST_SUFFIX);
  } catch (e) {
    await removeIfPresent(tmp);
    throw e;
  }
}

/**
 * The sha256 of the bytes at `path`: the recorded one when its identity still matches, else
 * hashed afresh and recorded (only when the file did not change while it was being hashed).
 */
export async function currentDigest(path: string): Promise<string> {
  const recorded = await readRecordedDigest(path);
  if (recorded !== undefined) return recorded;
  const before = identity(await Deno.stat(path));
  const digest = await sha256File(path);
  const after = identity(await Deno.stat(path));
  const stable = before.size === after.size && before.mtimeMs === after.mtimeMs &&
    before.ino === after.ino;
  if (stable) await writeRecordedDigest(path, digest).catch(() => {}); // a read-only cache still works
  return digest;
}

/** `<pid>.<random>`: a name part no other process or attempt uses. */
export function uniqueTag(): string {
  const r = crypto.getRandomValues(new Uint8Array(6));
  return `${Deno.pid}.${Array.from(r, (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Removes a file if it exists (no error when it does not). */
export async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

/** Normalises a sha256 given by a caller (hex, any case); an AttnkitError if it is not one. */
export function normaliseSha256(sha256: string, argument = "sha256"): string {
  const s = sha256.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(s)) {
    throw new AttnkitError(argument, `expected 64 hex digits, got ${JSON.stringify(sha256)}`);
  }
  return s;
}
