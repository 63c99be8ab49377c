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

/** Where a model lives: a local folder or an http(s) URL prefix, with confined resolution. */
export interface ModelRoot {
  /** The root as a URL ending in `/` (`file:///…/` or `https://…/`). */
  readonly href: string;
  /** Whether the root is a folder on this machine. */
  readonly isLocal: boolean;
  /** How messages name the root (a path for a folder, the URL otherwise). */
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
  /** Bytes of an entry (folder: the confined real path; URL: a GET with no credentials). */
  readBytes(name: unknown, what: string): Promise<Uint8Array>;
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
    return new URL(where.endsWith("/") ? where : `${where}/`);
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
export function modelRoot(where: string | URL): ModelRoot {
  const base = rootUrl(where);
  base.search = "";
  base.hash = "";
  const scheme = base.protocol;
  if (scheme !== "file:" && scheme !== "http:" && scheme !== "https:") {
    throw new AttnkitError("dir", `a model root is a folder or an http(s) URL, got ${base.href}`);
  }
  const isLocal = scheme === "file:";
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
  const local = async (name: unknown, what: string): Promise<string | undefined> => {
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
    return real;
  };
  const readBytes = async (name: unknown, what: string): Promise<Uint8Array> => {
    if (isLocal) {
      const path = await local(name, what);
      if (path === undefined) {
        throw new AttnkitError(
          what,
          `${entry(name, what)} is missing from the model root ${label}`,
        );
      }
      return await Deno.readFile(path);
    }
    const u = url(name, what);
    let res: Response;
    try {
      // No credentials: a URL root's own files are public here; authenticated downloads go
      // through fetchToCache with headers sent only to this root's origin.
      res = await fetch(u, { credentials: "omit" });
    } catch (e) {
      throw new AttnkitError(what, `could not fetch ${u.href}: ${(e as Error).message}`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new AttnkitError(what, `could not fetch ${u.href}: HTTP ${res.status}`);
    }
    return new Uint8Array(await res.arrayBuffer());
  };
  const readJsonObject = async (name: unknown, what: string): Promise<Record<string, unknown>> => {
    const text = new TextDecoder().decode(await readBytes(name, what));
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
  const bytes = await root.readBytes(entry, what);
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
