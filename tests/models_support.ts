/**
 * A file server for the model-loading tests: `Deno.serve` on 127.0.0.1 with a random port,
 * serving a directory with Range support (a strong ETag of the served bytes, If-Range honoured),
 * a request log, and fault modes (drop the connection
 * part-way through a file, serve a corrupted file, ignore Range, answer 404).
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";

/** Fault modes, changeable between requests. */
export interface ServerFaults {
  /** Path (relative, no leading slash) → send this many bytes, then drop the connection. */
  drop?: Record<string, number>;
  /** Drop only the first request for each path in `drop`, then serve normally. */
  dropOnce?: boolean;
  /** Paths served with one byte flipped. */
  corrupt?: Set<string>;
  /** Paths answered with 404. */
  missing?: Set<string>;
  /** Ignore Range headers (answer 200 with the whole file). */
  ignoreRange?: boolean;
  /** Send no ETag (a part can then not be resumed). */
  noValidators?: boolean;
}

/** One logged request. */
export interface LoggedRequest {
  /** Path without the leading slash. */
  path: string;
  /** The Range header, if any. */
  range: string | null;
  /** HTTP status sent. */
  status: number;
}

/** A running test server. */
export interface FixtureServer {
  /** Base URL ending in `/`. */
  url: string;
  /** Every request so far. */
  requests: LoggedRequest[];
  /** Current fault modes (mutable). */
  faults: ServerFaults;
  /** Stops the server and waits for it. */
  close(): Promise<void>;
}

const CHUNK = 4096;
/**
 * A body stream in 4 KiB chunks that ends after `stopAfter` bytes when given. The response still
 * declares the full Content-Length, so the server has to cut the connection short.
 */
function chunked(bytes: Uint8Array, stopAfter?: number): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const limit = stopAfter ?? bytes.length;
      if (at >= limit) {
        controller.close();
        return;
      }
      const end = Math.min(at + CHUNK, limit);
      controller.enqueue(bytes.slice(at, end));
      at = end;
    },
  });
}

/** Serves `dir` on 127.0.0.1 (random port) until `close()`. */
export function serveDirectory(dir: string): FixtureServer {
  const requests: LoggedRequest[] = [];
  const faults: ServerFaults = {};
  const dropped = new Set<string>();
  const handler = async (req: Request): Promise<Response> => {
    const path = decodeURIComponent(new URL(req.url).pathname.replace(/^\/+/, ""));
    const range = req.headers.get("range");
    const log = (status: number): void => {
      requests.push({ path, range, status });
    };
    let bytes: Uint8Array;
    try {
      if (path.split("/").includes("..") || faults.missing?.has(path)) throw new Error("404");
      bytes = await Deno.readFile(join(dir, ...path.split("/")));
    } catch {
      log(404);
      return new Response("not found", { status: 404 });
    }
    if (faults.corrupt?.has(path)) {
      bytes = bytes.slice();
      bytes[bytes.length >> 1] ^= 0xff;
    }
    let start = 0;
    let status = 200;
    const headers = new Headers({ "accept-ranges": "bytes" });
    const etag = `"${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}"`;
    if (!faults.noValidators) headers.set("etag", etag);
    const ifRange = req.headers.get("if-range");
    const m = range?.match(/^bytes=(\d+)-(\d*)$/);
    if (m && !faults.ignoreRange && (ifRange === null || ifRange === etag)) {
      start = Number(m[1]);
      if (start >= bytes.length) {
        log(416);
        return new Response(null, {
          status: 416,
          headers: { "content-range": `bytes */${bytes.length}`, etag },
        });
      }
      const end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
      headers.set("content-range", `bytes ${start}-${end}/${bytes.length}`);
      bytes = bytes.subarray(start, end + 1);
      status = 206;
    }
    headers.set("content-length", String(bytes.length));
    let stopAfter: number | undefined;
    const dropAt = faults.drop?.[path];
    if (dropAt !== undefined && !(faults.dropOnce && dropped.has(path))) {
      dropped.add(path);
      stopAfter = Math.max(0, dropAt - start);
    }
    log(status);
    return new Response(chunked(bytes, stopAfter), { status, headers });
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, handler);
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    requests,
    faults,
    async close() {
      await server.shutdown();
    },
  };
}

/** Runs `body` with a fresh server on `dir` and a fresh temporary cache directory. */
export async function withServer(
  dir: string,
  body: (server: FixtureServer, cacheDir: string) => Promise<void>,
): Promise<void> {
  const server = serveDirectory(dir);
  const cacheDir = await Deno.makeTempDir({ prefix: "attnkit-cache-" });
  try {
    await body(server, cacheDir);
  } finally {
    await server.close();
    await Deno.remove(cacheDir, { recursive: true });
  }
}

/** Every file under `dir` (relative paths with `/`). */
export async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(join(dir, prefix))) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory) out.push(...await listFiles(dir, rel));
    else out.push(rel);
  }
  return out.sort();
}

/** Path of the hf_tiny fixture directory. */
export const HF_TINY: string = new URL("./fixtures/hf_tiny/", import.meta.url).pathname;
