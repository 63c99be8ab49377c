/**
 * Where downloaded model files live on disk: the cache directory, the path a URL maps to, and
 * the sha256 bookkeeping that lets a cache hit be trusted without re-hashing gigabytes.
 *
 * A URL maps to `<cacheDir>/<host[_port]>/<path segments>`, so a Hugging Face file
 * `https://huggingface.co/org/repo/resolve/main/unet/model.onnx` lands at
 * `<cacheDir>/huggingface.co/org/repo/resolve/main/unet/model.onnx` and stays readable by people.
 * Beside a finished file sits `<file>.attnkit-sha256` with its digest, written when the download
 * completed; a partial download is `<file>.part` until its atomic rename.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { AttnkitError } from "../errors.ts";

/** Suffix of an unfinished download beside its final name. */
export const PART_SUFFIX = ".part";
/** Suffix of the sidecar file that records a finished file's sha256. */
export const DIGEST_SUFFIX = ".attnkit-sha256";

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
  const host = u.port ? `${u.hostname}_${u.port}` : u.hostname;
  return join(cacheDir, host.replace(UNSAFE, "_"), ...segments);
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

/** The digest recorded beside a finished cache file, or undefined if none was recorded. */
export async function readRecordedDigest(path: string): Promise<string | undefined> {
  try {
    const text = (await Deno.readTextFile(path + DIGEST_SUFFIX)).trim().toLowerCase();
    return /^[0-9a-f]{64}$/.test(text) ? text : undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return undefined;
    throw e;
  }
}

/** Records a finished cache file's digest beside it. */
export async function writeRecordedDigest(path: string, digest: string): Promise<void> {
  await Deno.writeTextFile(path + DIGEST_SUFFIX, digest + "\n");
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
