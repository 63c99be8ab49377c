/**
 * The one confinement rule for model files. A model lives under a {@link ModelRoot} — a folder
 * on disk or an http(s) URL prefix — and every file the model names (a `config.json` `files`
 * entry, a `model_index.json` component folder, an ONNX external-data `location`, a tokenizer
 * file) is resolved here, and only here, into a location inside that root. Whatever the
 * spelling — `..` segments, percent-encodings such as `%2e%2e`, absolute paths, drive letters,
 * backslashes, other schemes or hosts, or a symbolic link on disk whose target lies outside —
 * an entry that would leave the root stops the load with an {@link AttnkitError} naming the
 * entry and the root.
 *
 * Reading: a local file is opened once and proven to be the file that was checked (same device
 * and inode, same real path) before its bytes are used; a URL root is fetched without
 * credentials or userinfo, following only redirects that stay under the root, with an idle and
 * a total timeout. Every file has a size cap ({@link ModelRootOptions}). Hard links cannot be
 * told apart from ordinary files and are not detected.
 *
 * Every loader (the embedded shapes model, SD 1.5, and any later one: SD3, Flux, DiT) resolves
 * model-named files through {@link ModelRoot.local} / {@link ModelRoot.url} (or reads them with
 * {@link ModelRoot.readBytes}) and hands ONNX external data to onnxruntime itself with
 * {@link readOnnx}; nothing a model names is ever passed to `new URL(entry, base)`, `join` or
 * onnxruntime's own file lookup.
 *
 * @example
 * ```ts
 * import { modelRoot } from "./root.ts";
 * const root = modelRoot("weights/shapes");
 * root.entry("unet.onnx", "config.json files.unet");          // "unet.onnx"
 * // root.entry("../secret", "config.json files.unet") throws:
 * //   config.json files.unet: "../secret" leaves the model root …/weights/shapes/ (a ".." segment)
 * ```
 *
 * @module
 */
import { fileURLToPath, pathToFileURL } from "node:url";
import { sep } from "node:path";
import { AttnkitError } from "../errors.ts";
import { decodeModel } from "../onnx/proto.ts";
import { externalDataRefs } from "../onnx/external.ts";
import type { Model } from "../onnx/types.ts";

/** Longest entry accepted (characters); real model file names are far shorter. */
const MAX_ENTRY = 1024;

/**
 * Checks one model-named entry and returns it normalised: `/`-separated, without `.` segments.
 * Pure and lexical (the symlink check needs the disk and lives in {@link ModelRoot.local}).
 * `what` names the entry for the error (e.g. `config.json files.unet`), `rootLabel` the root.
 *
 * Refused: non-strings, empty entries, control characters, backslashes, absolute paths, any
 * `scheme:` prefix (URLs, `file:`, drive letters), `..` segments, empty segments (`a//b`),
 * segments made only of dots and spaces (Windows folds `.. ` into `..`), and segments whose
 * percent-decoding is a dot segment or holds a separator (URL parsers decode `%2e%2e` to `..`).
 *
 * @example
 * ```ts
 * confineEntry("./unet/model.onnx", "unet", "/models/sd/");   // "unet/model.onnx"
 * // confineEntry("%2e%2e/x", "unet", "/models/sd/") throws an AttnkitError naming "unet"
 * ```
 */
export function confineEntry(entry: unknown, what: string, rootLabel: string): string {
  const fail = (why: string): never => {
    throw new AttnkitError(
      what,
      `${JSON.stringify(entry)} leaves the model root ${rootLabel} (${why}); model files must be ` +
        `relative paths inside the root`,
    );
  };
  if (typeof entry !== "string") {
    throw new AttnkitError(
      what,
      `expected a file name relative to the model root ${rootLabel}, got ${
        entry === undefined ? "nothing" : JSON.stringify(entry)
      }`,
    );
  }
  if (entry === "") fail("empty name");
  if (entry.length > MAX_ENTRY) fail(`longer than ${MAX_ENTRY} characters`);
  // deno-lint-ignore no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(entry)) fail("a control character");
  if (entry.includes("\\")) fail("a backslash; use / between folders");
  if (entry.startsWith("/")) fail("an absolute path");
  if (/^[A-Za-z][A-Za-z0-9+.-]*:/.test(entry)) fail("a scheme, drive letter or URL");
  const out: string[] = [];
  for (const seg of entry.split("/")) {
    if (seg === ".") continue;
    if (seg === "") fail("an empty path segment");
    if (seg === "..") fail('a ".." segment');
    if (/^[. ]+$/.test(seg)) fail(`a segment of dots and spaces ${JSON.stringify(seg)}`);
    if (seg.includes("%")) {
      let decoded = seg;
      try {
        // Decode repeatedly: "%252e" is "%2e" after one pass and "." after two.
        for (let i = 0; i < 4 && decoded.includes("%"); i++) decoded = decodeURIComponent(decoded);
      } catch {
        fail(`a malformed percent-encoding in ${JSON.stringify(seg)}`);
      }
      if (/^[. ]+$/.test(decoded) || /[\\/]/.test(decoded) || decoded.includes("\u0000")) {
        fail(
          `the percent-encoded segment ${JSON.stringify(seg)} decodes to ${
            JSON.stringify(decoded)
          }`,
        );
      }
    }
    out.push(seg);
  }
  if (out.length === 0) fail("names the root itself");
  return out.join("/");
}

/** Limits on what a {@link ModelRoot} reads. */
export interface ModelRootOptions {
  /** Largest file read, in bytes (default {@link MAX_FILE_BYTES}, 4 GiB). */
  maxFileBytes?: number;
  /** URL roots: longest wait for the next bytes of a response, ms (default 10 s). */
  idleTimeoutMs?: number;
  /** URL roots: longest time for one whole file, ms (default 30 min: 4 GiB at 2.4 MB/s). */
  totalTimeoutMs?: number;
  /** URL roots: most redirects followed per file, each staying under the root (default 5). */
  maxRedirects?: number;
  /**
   * URL roots: other origins a redirect may go to, exactly as written (`https://cdn.example`),
   * e.g. the CDN a hub hands large files to. Only https origins count. Default none.
   */
  redirectOrigins?: readonly string[];
}

/**
 * Default per-file cap (4 GiB): SD 1.5's fp32 UNet weights, the largest single file attnkit
 * loads, are 3.4 GB; a sparse 1 TiB file named by a model stops here instead of exhausting memory.
 */
export const MAX_FILE_BYTES = 4 * 1024 ** 3;
/** ONNX protobuf files cannot exceed 2 GiB (protobuf's own limit); weights beyond go external. */
export const MAX_ONNX_BYTES = 2 * 1024 ** 3;
/** JSON configs and tokenizers: CLIP's tokenizer.json is 2 MB. */
export const MAX_JSON_BYTES = 64 * 1024 ** 2;

/**
 * A URL as messages show it: without userinfo (`user:password@`), query or fragment, so a
 * credential in a root URL never reaches an error message or a log.
 *
 * @example
 * ```ts
 * redactUrl("https://u:pw@host/m/?token=1"); // "https://host/m/"
 * ```
 */
export function redactUrl(url: string | URL): string {
  let u: URL;
  try {
    u = new URL(String(url));
  } catch {
    return String(url).replace(/\/\/[^/@]*@/, "//");
  }
  u.username = "";
  u.password = "";
  u.search = "";
  u.hash = "";
  return u.href;
}

/** Where a model lives: a local folder or an http(s) URL prefix, with confined resolution. */
export interface ModelRoot {
  /** The root as a URL ending in `/` (`file:///…/` or `https://…/`), without userinfo. */
  readonly href: string;
  /** Whether the root is a folder on this machine. */
  readonly isLocal: boolean;
  /** How messages name the root (a path for a folder, the URL without userinfo otherwise). */
  readonly label: string;
  /** The root's origin (`https://host:port`; `file://` for a folder): credentials go only here. */
  readonly origin: string;
  /** Validates and normalises a model-named entry ({@link confineEntry}). */
  entry(name: unknown, what: string): string;
  /** URL of an entry, proven to lie under {@link href}. */
  url(name: unknown, what: string): URL;
  /**
   * Local path of an entry in a folder root, after resolving links on disk: the real path must
   * lie inside the root's real path. `undefined` when the file does not exist; an AttnkitError
   * when it escapes or is not a regular file.
   */
  local(name: unknown, what: string): Promise<string | undefined>;
  /**
   * Bytes of an entry. Folder: the file is opened, then proven to be the confined real path
   * (same device and inode), and read through that handle. URL: a GET with no credentials whose
   * redirects must stay under the root. At most `maxBytes` (default the root's `maxFileBytes`).
   */
  readBytes(name: unknown, what: string, maxBytes?: number): Promise<Uint8Array>;
  /** A JSON object read from an entry; errors name `what` and the file. */
  readJsonObject(name: unknown, what: string): Promise<Record<string, unknown>>;
}

function rootUrl(where: string | URL): URL {
  if (where instanceof URL) {
    return new URL(where.href.endsWith("/") ? where.href : `${where.href}/`);
  }
  if (typeof where !== "string" || where === "") {
    throw new AttnkitError(
      "dir",
      `expected a folder path or an http(s) URL, got ${JSON.stringify(where)}`,
    );
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(where)) {
    try {
      return new URL(where.endsWith("/") ? where : `${where}/`);
    } catch {
      throw new AttnkitError("dir", `${JSON.stringify(redactUrl(where))} is not a valid URL`);
    }
  }
  const url = pathToFileURL(where);
  return new URL(url.href.endsWith("/") ? url.href : `${url.href}/`);
}

/**
 * The {@link ModelRoot} of a folder (path or `file:` URL) or an `http(s)://` URL prefix. Other
 * schemes are refused; URL roots lose any query or fragment.
 *
 * @example
 * ```ts
 * const root = modelRoot("tests/fixtures/hf_tiny");
 * const vocab = await root.local("tokenizer/vocab.json", "tokenizer");
 * ```
 */
export function modelRoot(where: string | URL, opts: ModelRootOptions = {}): ModelRoot {
  const base = rootUrl(where);
  base.search = "";
  base.hash = "";
  const limit = (key: keyof ModelRootOptions, fallback: number): number => {
    const v = opts[key] ?? fallback;
    if (typeof v !== "number" || !(v > 0) || !Number.isSafeInteger(Math.ceil(v))) {
      throw new AttnkitError(key, `must be a positive number, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const maxFileBytes = limit("maxFileBytes", MAX_FILE_BYTES);
  const idleMs = limit("idleTimeoutMs", 10_000);
  const totalMs = limit("totalTimeoutMs", 1_800_000);
  const maxRedirects = opts.maxRedirects === 0 ? 0 : limit("maxRedirects", 5);
  const extraOrigins = new Set<string>();
  for (const o of opts.redirectOrigins ?? []) {
    let u: URL | undefined;
    try {
      u = new URL(o);
    } catch { /* refused below */ }
    if (!u || u.protocol !== "https:" || u.origin !== o.replace(/\/$/, "")) {
      throw new AttnkitError(
        "redirectOrigins",
        `expected https origins such as "https://cdn.example", got ${JSON.stringify(o)}`,
      );
    }
    extraOrigins.add(u.origin);
  }
  const scheme = base.protocol;
  if (scheme !== "file:" && scheme !== "http:" && scheme !== "https:") {
    throw new AttnkitError(
      "dir",
      `a model root is a folder or an http(s) URL, got ${redactUrl(base)}`,
    );
  }
  const isLocal = scheme === "file:";
  // Userinfo goes nowhere: not into messages, and not onto the wire (a URL root's files are
  // public; authenticated downloads go through fetchToCache).
  base.username = "";
  base.password = "";
  const href = base.href;
  const dir = isLocal ? fileURLToPath(base) : "";
  const label = isLocal ? dir : href;
  const origin = isLocal ? "file://" : base.origin;
  let realRoot: Promise<string> | undefined;
  const entry = (name: unknown, what: string): string => confineEntry(name, what, label);
  const url = (name: unknown, what: string): URL => {
    const rel = entry(name, what);
    const u = new URL(rel.split("/").map(encodeURIComponent).join("/"), base);
    // Belt and braces: the lexical rules above should make this impossible.
    if (!u.href.startsWith(href) || u.origin !== base.origin) {
      throw new AttnkitError(
        what,
        `${JSON.stringify(name)} resolves outside the model root ${label}`,
      );
    }
    return u;
  };
  const local = async (name: unknown, what: string): Promise<string | undefined> =>
    (await localInfo(name, what))?.real;
  const localInfo = async (
    name: unknown,
    what: string,
  ): Promise<{ real: string; info: Deno.FileInfo } | undefined> => {
    if (!isLocal) throw new AttnkitError(what, `the model root ${label} is not a local folder`);
    const path = fileURLToPath(url(name, what));
    realRoot ??= Deno.realPath(dir).catch(() => {
      throw new AttnkitError("dir", `the model folder ${dir} does not exist`);
    });
    const rootReal = await realRoot;
    let real: string;
    try {
      real = await Deno.realPath(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) return undefined;
      throw new AttnkitError(what, `cannot resolve ${path}: ${(e as Error).message}`);
    }
    const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
    if (!real.startsWith(inside)) {
      throw new AttnkitError(
        what,
        `${JSON.stringify(name)} is a link to ${real}, outside the model root ${label} ` +
          `(real path ${rootReal}); model files must lie inside the root`,
      );
    }
    const info = await Deno.stat(real);
    if (!info.isFile) throw new AttnkitError(what, `${path} is not a regular file`);
    return { real, info };
  };
  const readBytes = async (
    name: unknown,
    what: string,
    maxBytes = maxFileBytes,
  ): Promise<Uint8Array> => {
    const cap = Math.min(maxBytes, maxFileBytes);
    if (isLocal) {
      const found = await localInfo(name, what);
      if (found === undefined) {
        throw new AttnkitError(
          what,
          `${entry(name, what)} is missing from the model root ${label}`,
        );
      }
      return await readFileChecked(found.real, what, cap, found);
    }
    return await fetchConfined(url(name, what), what, cap);
  };
  /**
   * GETs `u` following redirects by hand: each must stay on the root's origin and under its
   * href (a cross-origin hop would make another host's bytes model bytes: SSRF), at most
   * `maxRedirects`, with an idle and a total timeout and a size cap.
   */
  const fetchConfined = async (first: URL, what: string, cap: number): Promise<Uint8Array> => {
    const total = AbortSignal.timeout(totalMs);
    let u = first;
    for (let hop = 0;; hop++) {
      let res: Response;
      const idle = new AbortController();
      let timer = setTimeout(() => idle.abort(), idleMs);
      const signal = AbortSignal.any([total, idle.signal]);
      const timedOut = (): AttnkitError =>
        new AttnkitError(
          what,
          `fetching ${redactUrl(u)} timed out (${
            total.aborted ? `over ${totalMs} ms in all` : `no bytes for ${idleMs} ms`
          })`,
        );
      try {
        try {
          res = await fetch(u, { credentials: "omit", redirect: "manual", signal });
        } catch (e) {
          if (signal.aborted) throw timedOut();
          throw new AttnkitError(
            what,
            `could not fetch ${redactUrl(u)}: ${(e as Error).message}`,
          );
        }
        if (res.status >= 300 && res.status < 400 && res.headers.has("location")) {
          await res.body?.cancel();
          let next: URL | undefined;
          try {
            next = new URL(res.headers.get("location")!, u);
          } catch {
            next = undefined;
          }
          const shown = next ? redactUrl(next) : JSON.stringify(res.headers.get("location"));
          const underRoot = next !== undefined && next.origin === base.origin &&
            next.href.startsWith(href);
          const allowed = next !== undefined && next.protocol === "https:" &&
            extraOrigins.has(next.origin);
          if (
            next === undefined || !(underRoot || allowed) || next.username !== "" ||
            next.password !== ""
          ) {
            throw new AttnkitError(
              what,
              `${redactUrl(first)} redirects to ${shown}, outside the model root ${label}; ` +
                "redirects must stay under the root (or go to an origin in redirectOrigins)",
            );
          }
          if (hop >= maxRedirects) {
            throw new AttnkitError(
              what,
              `${redactUrl(first)} redirected more than ${maxRedirects} times (last to ${shown})`,
            );
          }
          u = next;
          continue;
        }
        if (!res.ok) {
          await res.body?.cancel();
          throw new AttnkitError(what, `could not fetch ${redactUrl(u)}: HTTP ${res.status}`);
        }
        const declared = Number(res.headers.get("content-length"));
        if (Number.isFinite(declared) && declared > cap) {
          await res.body?.cancel();
          throw tooLarge(what, redactUrl(u), declared, cap);
        }
        const chunks: Uint8Array[] = [];
        let n = 0;
        const reader = res.body?.getReader();
        try {
          for (;;) {
            const { done, value } = reader ? await reader.read() : { done: true, value: undefined };
            clearTimeout(timer);
            if (done || !value) break;
            n += value.length;
            if (n > cap) throw tooLarge(what, redactUrl(u), n, cap);
            chunks.push(value);
            timer = setTimeout(() => idle.abort(), idleMs);
          }
        } catch (e) {
          await reader?.cancel().catch(() => {});
          if (e instanceof AttnkitError) throw e;
          if (signal.aborted) throw timedOut();
          throw new AttnkitError(what, `reading ${redactUrl(u)} failed: ${(e as Error).message}`);
        }
        const out = new Uint8Array(n);
        let o = 0;
        for (const c of chunks) {
          out.set(c, o);
          o += c.length;
        }
        return out;
      } finally {
        clearTimeout(timer);
      }
    }
  };
  const readJsonObject = async (name: unknown, what: string): Promise<Record<string, unknown>> => {
    const text = new TextDecoder().decode(await readBytes(name, what, MAX_JSON_BYTES));
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new AttnkitError(
        what,
        `${entry(name, what)} in ${label} is not valid JSON: ${(e as Error).message}`,
      );
    }
    if (!value || typeof value !== "object" || Array.isArray(value)) {
      throw new AttnkitError(what, `${entry(name, what)} in ${label} must hold a JSON object`);
    }
    return value as Record<string, unknown>;
  };
  return { href, isLocal, label, origin, entry, url, local, readBytes, readJsonObject };
}

function tooLarge(what: string, file: string, bytes: number, cap: number): AttnkitError {
  const size = (x: number): string =>
    x >= 1024 ** 3
      ? `${(x / 1024 ** 3).toFixed(1)} GiB`
      : x >= 1024 ** 2
      ? `${(x / 1024 ** 2).toFixed(1)} MiB`
      : `${x}-byte`;
  return new AttnkitError(
    what,
    `${file} is ${size(bytes).replace("-byte", " bytes")} or more, over the ${size(cap)} ` +
      "limit for this kind of file " +
      "(the model root's maxFileBytes option raises the limit for weight files)",
  );
}

/**
 * Reads a local file through one handle and proves that handle is the file that was checked:
 * the opened file's device and inode must equal those of `path`'s real path, now and (when
 * given) at check time, and the real path must still be `path` — so a link or rename swapped in
 * after a confinement check is refused instead of read (issue 10 break test, TOCTOU). `checked`
 * is what the confinement check saw, or `"real"` when `path` is itself the real path that was
 * checked (as {@link ModelRoot.local} returns it). Exactly
 * the bytes read are returned; reading stops at `maxBytes`. Hard links cannot be told apart
 * from the file itself and are not detected.
 *
 * @example
 * ```ts
 * const real = await Deno.realPath("weights/shapes/unet.onnx");
 * const bytes = await readFileChecked(real, "unet", 2 ** 31);
 * ```
 */
export async function readFileChecked(
  path: string,
  what: string,
  maxBytes: number = MAX_FILE_BYTES,
  checked?: { real: string; info: Deno.FileInfo } | "real",
): Promise<Uint8Array> {
  const resolve = async (): Promise<{ real: string; info: Deno.FileInfo }> => {
    try {
      const real = await Deno.realPath(path);
      return { real, info: await Deno.stat(real) };
    } catch (e) {
      throw new AttnkitError(what, `cannot read ${path}: ${(e as Error).message}`);
    }
  };
  const before = checked === undefined || checked === "real" ? await resolve() : checked;
  if (checked === "real" && before.real !== path) {
    throw new AttnkitError(
      what,
      `${path} was checked as a real path inside its model root but now resolves to ` +
        `${before.real}; refusing to read it`,
    );
  }
  if (!before.info.isFile) throw new AttnkitError(what, `${path} is not a regular file`);
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw new AttnkitError(what, `cannot open ${path}: ${(e as Error).message}`);
  }
  try {
    const opened = await file.stat();
    const now = await resolve();
    const same = (a: Deno.FileInfo, b: Deno.FileInfo): boolean =>
      a.dev === b.dev && a.ino === b.ino && (a.ino !== null || a.size === b.size);
    if (now.real !== before.real || !same(opened, now.info) || !same(opened, before.info)) {
      throw new AttnkitError(
        what,
        `${path} was replaced between the confinement check and the read (it resolved to ` +
          `${before.real}, now ${now.real}); refusing to read it`,
      );
    }
    if (!opened.isFile) throw new AttnkitError(what, `${path} is not a regular file`);
    if (opened.size > maxBytes) throw tooLarge(what, path, opened.size, maxBytes);
    const out = new Uint8Array(opened.size);
    let n = 0;
    while (n < out.length) {
      const got = await file.read(out.subarray(n));
      if (got === null) break;
      n += got;
    }
    if (n !== out.length || (await file.read(new Uint8Array(1))) !== null) {
      throw new AttnkitError(what, `${path} changed size while being read`);
    }
    return out;
  } finally {
    file.close();
  }
}

/**
 * A small text file (JSON config, tokenizer, merges) read with {@link readFileChecked}: one
 * checked handle, at most {@link MAX_JSON_BYTES}, strict UTF-8 (BOM kept out of JSON's way).
 *
 * @example
 * ```ts
 * const text = await readTextChecked("tests/fixtures/hf_tiny/model_index.json", "model_index.json");
 * ```
 */
export async function readTextChecked(path: string, what: string): Promise<string> {
  const bytes = await readFileChecked(path, what, MAX_JSON_BYTES);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new AttnkitError(what, `${path} is not valid UTF-8 text`);
  }
}

/** An ONNX file read through a root, with its external data read through the same root. */
export interface OnnxFile {
  /** The normalised entry of the `.onnx` file. */
  entry: string;
  /** The file's bytes. */
  bytes: Uint8Array;
  /** The decoded model. */
  model: Model;
  /** External data for onnxruntime: `path` is the model's `location`, `data` the confined bytes. */
  externalData: { path: string; data: Uint8Array }[];
}

/** The folder part of a normalised entry (`"unet/model.onnx"` → `"unet/"`). */
export function entryDir(entry: string): string {
  return entry.includes("/") ? entry.slice(0, entry.lastIndexOf("/") + 1) : "";
}

/**
 * Reads an ONNX file named by a model and every external-data file it names, all confined to
 * `root` (locations are relative to the `.onnx` file's folder, as onnx defines them). The result
 * goes to `createSession` as `externalData`, so onnxruntime never looks anything up itself.
 *
 * @example
 * ```ts
 * const f = await readOnnx(modelRoot("tests/fixtures/hf_tiny"), "unet/model.onnx", "unet");
 * // f.externalData: [{ path: "model.onnx_data", data: Uint8Array(…) }]
 * ```
 */
export async function readOnnx(root: ModelRoot, name: unknown, what: string): Promise<OnnxFile> {
  const entry = root.entry(name, what);
  const bytes = await root.readBytes(entry, what, MAX_ONNX_BYTES);
  const model = decodeModel(bytes, `${what} (${entry})`);
  const dir = entryDir(entry);
  const externalData = await Promise.all(
    externalDataRefs(bytes, entry).map(async (location) => ({
      path: location,
      data: await root.readBytes(dir + location, `${what} (${entry}) external data`),
    })),
  );
  return { entry, bytes, model, externalData };
}
