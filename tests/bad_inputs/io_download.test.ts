/**
 * Bad-input corpus, download cache (issue 10 F5, F6, F7, F8, F14 notadir, F16, H24, H28, H31,
 * H34): every fault is served by a server on 127.0.0.1 started here, and every case is bounded in
 * time (idle timeouts of a few hundred ms). Each case asserts the clear error (url or `cacheDir`
 * named) or the correct bytes.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AttnkitError } from "../../lib/errors.ts";
import {
  cachePathFor,
  DIGEST_SUFFIX,
  isPrivateUrl,
  LOCK_SUFFIX,
  PART_SUFFIX,
  RESUME_SUFFIX,
} from "../../lib/models/cache.ts";
import { fetchToCache, HttpStatusError } from "../../lib/models/download.ts";
import {
  content,
  exists,
  rawServer,
  rejectsClearly,
  sha,
  tree,
  withTempDir,
  writeAll,
} from "./io_support.ts";

const SIZE = 1 << 18;

/** A content server: version `current` of SIZE bytes, ETag "v<n>", Range/If-Range, paced. */
function versionServer(opts: {
  pace?: number;
  rangedPace?: number;
  dropFirst?: boolean;
  ignoreIfRange?: boolean;
  noValidators?: boolean;
} = {}) {
  const state = { current: 1, dropFirst: opts.dropFirst ?? false, log: [] as string[] };
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const data = content(SIZE, state.current);
    const etag = `"v${state.current}"`;
    const m = req.headers.get("range")?.match(/bytes=(\d+)-/);
    const ifRange = req.headers.get("if-range");
    const ranged = m && (opts.ignoreIfRange || ifRange === null || ifRange === etag);
    const start = ranged ? Number(m![1]) : 0;
    state.log.push(`${req.headers.get("range") ?? "-"} ${ranged ? 206 : 200}`);
    const headers = new Headers({ "content-length": String(SIZE - start) });
    if (!opts.noValidators) headers.set("etag", etag);
    if (ranged) headers.set("content-range", `bytes ${start}-${SIZE - 1}/${SIZE}`);
    const pace = ranged ? opts.rangedPace ?? 0 : opts.pace ?? 0;
    const drop = state.dropFirst;
    state.dropFirst = false;
    const body = new ReadableStream({
      async start(c) {
        for (let o = start; o < SIZE; o += 16384) {
          if (drop && o >= SIZE / 2) return c.error(new Error("connection reset"));
          c.enqueue(data.slice(o, o + 16384));
          if (pace) await new Promise((r) => setTimeout(r, pace));
        }
        c.close();
      },
    });
    return new Response(body, { status: ranged ? 206 : 200, headers });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/unet/model.onnx`,
    state,
    close: () => server.shutdown(),
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------- F5 / F16: concurrency

Deno.test("io_download F16: two callers in one process, the second mid-way: both get the right file", async () => {
  const srv = versionServer({ pace: 10, rangedPace: 40 });
  await withTempDir(async (cacheDir) => {
    const a = fetchToCache(srv.url, { cacheDir });
    await sleep(60);
    const b = fetchToCache(srv.url, { cacheDir });
    const [pa, pb] = await Promise.all([a, b]);
    assert.equal(pa, pb);
    const want = sha(content(SIZE, 1));
    const path = await fetchToCache(srv.url, { cacheDir, sha256: want });
    const got = await Deno.readFile(path);
    assert.equal(got.length, SIZE);
    assert.equal(sha(got), want);
    assert.deepEqual((await tree(cacheDir)).filter((p) => /tmp|part|lock/.test(p)), []);
  });
  await srv.close();
});

Deno.test("io_download F16: first caller's connection drops mid-way; both callers still get the file", async () => {
  const srv = versionServer({ pace: 10, dropFirst: true });
  await withTempDir(async (cacheDir) => {
    const a = fetchToCache(srv.url, { cacheDir });
    await sleep(30);
    const b = fetchToCache(srv.url, { cacheDir });
    const [pa, pb] = await Promise.all([a, b]);
    assert.equal(pa, pb);
    assert.equal(sha(await Deno.readFile(pa)), sha(content(SIZE, 1)));
  });
  await srv.close();
});

Deno.test("io_download F5: two processes download into one cache; one file, the right bytes", async () => {
  const srv = versionServer({ pace: 5 });
  await withTempDir(async (cacheDir) => {
    const mod = new URL("../../lib/models/download.ts", import.meta.url).href;
    const code = `import { fetchToCache } from ${JSON.stringify(mod)};
      console.log(await fetchToCache(${JSON.stringify(srv.url)}, { cacheDir: ${
      JSON.stringify(cacheDir)
    } }));`;
    const run = () =>
      new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "piped" })
        .output();
    const [r1, r2] = await Promise.all([run(), sleep(150).then(run)]);
    const dec = (b: Uint8Array) => new TextDecoder().decode(b);
    assert.equal(r1.code, 0, dec(r1.stderr));
    assert.equal(r2.code, 0, dec(r2.stderr));
    assert.equal(dec(r1.stdout).trim(), dec(r2.stdout).trim());
    const got = await Deno.readFile(dec(r1.stdout).trim());
    assert.equal(sha(got), sha(content(SIZE, 1)));
  });
  await srv.close();
});

Deno.test("io_download F16: the remote file changes between interruption and resume: no splice", async () => {
  const srv = versionServer({ dropFirst: true, pace: 5 });
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(fetchToCache(srv.url, { cacheDir, retries: 0 }), srv.url, /is kept/);
    srv.state.current = 2; // new version, new ETag: If-Range fails, the server sends it whole
    const path = await fetchToCache(srv.url, { cacheDir, sha256: sha(content(SIZE, 2)) });
    assert.equal(sha(await Deno.readFile(path)), sha(content(SIZE, 2)));
    assert.match(srv.state.log.at(-1)!, /^bytes=\d+- 200$/);
  });
  await srv.close();
});

Deno.test("io_download F16: a server that ignores If-Range and sends a changed 206: restarted", async () => {
  const srv = versionServer({ dropFirst: true, ignoreIfRange: true, pace: 5 });
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(fetchToCache(srv.url, { cacheDir, retries: 0 }), srv.url, /is kept/);
    srv.state.current = 3;
    const path = await fetchToCache(srv.url, { cacheDir });
    assert.equal(sha(await Deno.readFile(path)), sha(content(SIZE, 3)));
    assert.deepEqual(srv.state.log.slice(1).map((l) => l.split(" ")[1]), ["206", "200"]);
  });
  await srv.close();
});

Deno.test("io_download: a stale lock (holder gone) is taken over", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const final = cachePathFor(srv.url, cacheDir);
    await Deno.mkdir(join(final, ".."), { recursive: true });
    await Deno.writeTextFile(final + LOCK_SUFFIX, '{"pid":999999,"nonce":"dead"}');
    const old = new Date(Date.now() - 10_000);
    await Deno.utime(final + LOCK_SUFFIX, old, old);
    const path = await fetchToCache(srv.url, { cacheDir, lockStaleMs: 1000 });
    assert.equal(sha(await Deno.readFile(path)), sha(content(SIZE, 1)));
    assert.equal(await exists(final + LOCK_SUFFIX), false);
  });
  await srv.close();
});

Deno.test({
  name:
    "io_download: a fresh lock whose holder process is gone (Ctrl-C, kill -9) is taken over at once",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const srv = versionServer();
    await withTempDir(async (cacheDir) => {
      const final = cachePathFor(srv.url, cacheDir);
      await Deno.mkdir(join(final, ".."), { recursive: true });
      const child = new Deno.Command("true").spawn();
      const { pid } = child;
      await child.status; // exited: its pid is free now
      await Deno.writeTextFile(
        final + LOCK_SUFFIX,
        JSON.stringify({ pid, host: Deno.hostname(), nonce: "gone" }),
      );
      const orphan = `${final}.${pid}.0123456789ab.attnkit-tmp`;
      await Deno.writeFile(orphan, content(1000, 7)); // what the killed writer had written
      const t0 = Date.now();
      const path = await fetchToCache(srv.url, { cacheDir }); // lockStaleMs stays 60 s
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.equal(sha(await Deno.readFile(path)), sha(content(SIZE, 1)));
      assert.equal(await exists(orphan), false, "the dead writer's temporary is removed");
    });
    await srv.close();
  },
});

Deno.test("io_download: a live lock: the waiter returns the holder's finished file, no request", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const final = cachePathFor(srv.url, cacheDir);
    await Deno.mkdir(join(final, ".."), { recursive: true });
    await Deno.writeTextFile(final + LOCK_SUFFIX, '{"pid":1,"nonce":"live"}');
    const waiter = fetchToCache(srv.url, { cacheDir, lockStaleMs: 5000 });
    await sleep(200);
    await Deno.writeFile(final, content(SIZE, 1)); // the holder renames its file into place
    await Deno.remove(final + LOCK_SUFFIX);
    assert.equal(await waiter, final);
    assert.equal(srv.state.log.length, 0);
  });
  await srv.close();
});

Deno.test("io_download: aborting while waiting for another writer rejects and leaves the lock alone", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const final = cachePathFor(srv.url, cacheDir);
    await Deno.mkdir(join(final, ".."), { recursive: true });
    await Deno.writeTextFile(final + LOCK_SUFFIX, '{"pid":1,"nonce":"live"}');
    const ctl = new AbortController();
    const p = fetchToCache(srv.url, { cacheDir, signal: ctl.signal });
    await sleep(100);
    ctl.abort(new Error("stop"));
    await assert.rejects(p, /stop/);
    assert.ok(await exists(final + LOCK_SUFFIX));
  });
  await srv.close();
});

Deno.test("io_download: a waiter takes over when the holder fails (interrupted, no retries)", async () => {
  const srv = versionServer({ pace: 5, dropFirst: true });
  await withTempDir(async (cacheDir) => {
    const a = fetchToCache(srv.url, { cacheDir, retries: 0 });
    await sleep(20);
    const b = fetchToCache(srv.url, { cacheDir, retries: 0 });
    // Whichever took the lock got the dropped answer and fails; the other then takes over.
    const results = await Promise.allSettled([a, b]);
    assert.deepEqual(results.map((r) => r.status).sort(), ["fulfilled", "rejected"]);
    const won = results.find((r) => r.status === "fulfilled") as PromiseFulfilledResult<string>;
    assert.equal(sha(await Deno.readFile(won.value)), sha(content(SIZE, 1)));
  });
  await srv.close();
});

Deno.test("io_download F16: a sidecar naming the right digest does not vouch for other bytes", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const want = sha(content(SIZE, 1));
    const final = cachePathFor(srv.url, cacheDir);
    await Deno.mkdir(join(final, ".."), { recursive: true });
    const wrong = content(SIZE + 4096, 9);
    await Deno.writeFile(final, wrong);
    await Deno.writeTextFile(final + DIGEST_SUFFIX, want + "\n"); // old-style: digest only
    const path = await fetchToCache(srv.url, { cacheDir, sha256: want });
    assert.equal(sha(await Deno.readFile(path)), want);
    assert.equal(srv.state.log.length, 1);
  });
  await srv.close();
});

Deno.test("io_download: a cached file edited in place after its digest was recorded is fetched again", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const want = sha(content(SIZE, 1));
    const path = await fetchToCache(srv.url, { cacheDir, sha256: want });
    const bytes = await Deno.readFile(path);
    bytes[100] ^= 1;
    await sleep(20);
    await Deno.writeFile(path, bytes); // same size, new mtime
    const again = await fetchToCache(srv.url, { cacheDir, sha256: want });
    assert.equal(sha(await Deno.readFile(again)), want);
    assert.equal(srv.state.log.length, 2);
  });
  await srv.close();
});

// ---------------------------------------------------------------- F6: stalls and timeouts

function stallServer(afterHeaders: boolean) {
  return rawServer(async (conn, _head, closed) => {
    if (afterHeaders) {
      await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + "x".repeat(10));
    }
    await closed; // silent until the test closes the server
  });
}

Deno.test("io_download F6: a server that goes silent after 10 bytes: idle timeout, clear error", async () => {
  const srv = stallServer(true);
  await withTempDir(async (cacheDir) => {
    const t0 = Date.now();
    const e = await rejectsClearly(
      fetchToCache(srv.url + "x.bin", { cacheDir, idleTimeoutMs: 300, retries: 0 }),
      srv.url + "x.bin",
      /idleTimeoutMs/,
    );
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.match(e.message, /nothing was kept/);
    assert.deepEqual((await tree(cacheDir)).filter((p) => /tmp|part|lock/.test(p)), []);
  });
  await srv.close();
});

Deno.test("io_download F6: a server that never sends headers: idle timeout", async () => {
  const srv = stallServer(false);
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(
      fetchToCache(srv.url + "x.bin", { cacheDir, idleTimeoutMs: 300, retries: 0 }),
      srv.url + "x.bin",
      /no data for 300 ms/,
    );
  });
  await srv.close();
});

Deno.test("io_download F6: stalls are retried (retries: 1 → two connections), then a clear error", async () => {
  const srv = stallServer(true);
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(
      fetchToCache(srv.url + "x.bin", { cacheDir, idleTimeoutMs: 200, retries: 1 }),
      srv.url + "x.bin",
      /idleTimeoutMs/,
    );
    assert.equal(srv.heads.length, 2);
  });
  await srv.close();
});

Deno.test("io_download F6: a slow drip under the idle limit is cut by totalTimeoutMs", async () => {
  let stop = false;
  const srv = rawServer(async (conn) => {
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
    for (let i = 0; i < 1000 && !stop; i++) {
      await writeAll(conn, "x");
      await sleep(50);
    }
  });
  await withTempDir(async (cacheDir) => {
    const t0 = Date.now();
    await rejectsClearly(
      fetchToCache(srv.url + "x.bin", {
        cacheDir,
        idleTimeoutMs: 1000,
        totalTimeoutMs: 400,
        retries: 0,
      }),
      srv.url + "x.bin",
      /totalTimeoutMs/,
    );
    assert.ok(Date.now() - t0 < 5000);
  });
  stop = true;
  await srv.close();
});

// ---------------------------------------------------------------- F7: schemes, hosts, credentials

Deno.test("io_download F7/H31: plain http to a remote host (with a token) is refused before any request", async () => {
  await withTempDir(async (cacheDir) => {
    const url = "http://attnkit-probe.invalid/org/repo/resolve/main/unet/model.onnx";
    const e = await rejectsClearly(
      fetchToCache(url, { cacheDir, headers: { Authorization: "Bearer t" } }),
      "url",
      /plain http.*use https.*allowInsecureHttp/,
    );
    assert.doesNotMatch(e.message, /\.part/);
    assert.deepEqual(await tree(cacheDir), []);
  });
});

Deno.test("io_download F7: a password in the URL is refused and not echoed", async () => {
  await withTempDir(async (cacheDir) => {
    const e = await rejectsClearly(
      fetchToCache("https://user:hunter2@example.invalid/x.bin", { cacheDir }),
      "url",
      /user name or password in the URL is refused/,
    );
    assert.doesNotMatch(e.message, /hunter2/);
  });
});

Deno.test("io_download F7: http to a remote IP address is refused too", async () => {
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(fetchToCache("http://10.0.0.1/x.bin", { cacheDir }), "url", /plain http/);
  });
});

Deno.test("io_download F7: allowInsecureHttp lets plain http through to the network", async () => {
  await withTempDir(async (cacheDir) => {
    // .invalid never resolves: the error is the network's, not the scheme rule's.
    const e = await fetchToCache("http://attnkit-probe.invalid/x.bin", {
      cacheDir,
      allowInsecureHttp: true,
      retries: 0,
      idleTimeoutMs: 3000,
    }).catch((e) => e);
    assert.ok(e instanceof AttnkitError);
    assert.doesNotMatch(e.message, /plain http/);
    assert.match(e.message, /nothing was kept/);
  });
});

for (
  const [name, url] of [
    ["H34 '..' host", "http://../escaped/deep/x.bin"],
    ["percent-encoded '..' host", "http://%2e%2e/escaped/x.bin"],
    ["'.' host", "http://./x.bin"],
    ["'a..b' host", "http://a..b/x.bin"],
  ]
) {
  Deno.test(`io_download F7: ${name} never escapes the cache directory`, async () => {
    await withTempDir(async (root) => {
      const cacheDir = join(root, "attnkit");
      await rejectsClearly(
        fetchToCache(url, { cacheDir, allowInsecureHttp: true }),
        "url",
        /not a plain host name/,
      );
      assert.deepEqual(await tree(root), []);
    });
  });
}

for (const url of ["file:///etc/passwd", "ftp://127.0.0.1/x.bin", "data:,hello", "x.bin"]) {
  Deno.test(`io_download: non-http URL ${url} is refused`, async () => {
    await withTempDir(async (cacheDir) => {
      await rejectsClearly(fetchToCache(url, { cacheDir }), "url", /http\(s\) URL|absolute URL/);
    });
  });
}

Deno.test("io_download: loopback names (localhost, 127.x, [::1]) may use http and stay inside the cache", () => {
  assert.equal(cachePathFor("http://[::1]:8080/x.bin", "/c"), join("/c", "__1_8080", "x.bin"));
  assert.equal(cachePathFor("http://LOCALHOST/x.bin", "/c"), join("/c", "localhost", "x.bin"));
  assert.equal(cachePathFor("http://127.1:9/x.bin", "/c"), join("/c", "127.0.0.1_9", "x.bin"));
});

/** A redirecting server: `routes[path]` is a Location (or a body when it starts with "="). */
function redirectServer(routes: Record<string, string>) {
  const seen: { path: string; auth: string | null }[] = [];
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    seen.push({ path, auth: req.headers.get("authorization") });
    const r = routes[path];
    if (r === undefined) return new Response("no", { status: 404 });
    if (r === "") return new Response(null, { status: 302 });
    if (r.startsWith("=")) return new Response(r.slice(1));
    return new Response(null, { status: 302, headers: { location: r } });
  });
  return { base: `http://127.0.0.1:${server.addr.port}`, seen, close: () => server.shutdown() };
}

Deno.test("io_download H24: a redirect loop is a clear error; no part is claimed; nothing left", async () => {
  const srv = redirectServer({ "/a.bin": "/b.bin", "/b.bin": "/a.bin" });
  await withTempDir(async (cacheDir) => {
    const e = await rejectsClearly(
      fetchToCache(srv.base + "/a.bin", { cacheDir }),
      srv.base + "/a.bin",
      /redirect loop/,
    );
    assert.doesNotMatch(e.message, /\.part is kept/);
    assert.deepEqual(
      (await tree(cacheDir)).filter((p) => !p.endsWith("127.0.0.1_" + new URL(srv.base).port)),
      [],
    );
  });
  await srv.close();
});

Deno.test("io_download: more than maxRedirects redirects is a clear error", async () => {
  const routes: Record<string, string> = {};
  for (let i = 0; i < 5; i++) routes[`/r${i}.bin`] = `/r${i + 1}.bin`;
  routes["/r5.bin"] = "=done";
  const srv = redirectServer(routes);
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(
      fetchToCache(srv.base + "/r0.bin", { cacheDir, maxRedirects: 3 }),
      srv.base + "/r0.bin",
      /maxRedirects/,
    );
    const ok = await fetchToCache(srv.base + "/r0.bin", { cacheDir });
    assert.equal(await Deno.readTextFile(ok), "done");
  });
  await srv.close();
});

Deno.test("io_download: a redirect without Location is an HTTP error naming the url", async () => {
  const srv = redirectServer({ "/a.bin": "" });
  await withTempDir(async (cacheDir) => {
    await assert.rejects(fetchToCache(srv.base + "/a.bin", { cacheDir }), HttpStatusError);
  });
  await srv.close();
});

Deno.test("io_download F7: a redirect from loopback to plain http on a remote host is refused", async () => {
  const srv = redirectServer({ "/a.bin": "http://attnkit-probe.invalid/a.bin" });
  await withTempDir(async (cacheDir) => {
    await rejectsClearly(fetchToCache(srv.base + "/a.bin", { cacheDir }), "url", /plain http/);
  });
  await srv.close();
});

Deno.test("io_download F7: credentials go only to the origin, not to the host a redirect names", async () => {
  const other = redirectServer({ "/cdn.bin": "=payload" });
  const srv = redirectServer({ "/a.bin": "/b.bin", "/b.bin": other.base + "/cdn.bin" });
  await withTempDir(async (cacheDir) => {
    const path = await fetchToCache(srv.base + "/a.bin", {
      cacheDir,
      headers: { Authorization: "Bearer secret" },
    });
    assert.equal(await Deno.readTextFile(path), "payload");
    assert.deepEqual(srv.seen.map((s) => s.auth), ["Bearer secret", "Bearer secret"]);
    assert.deepEqual(other.seen.map((s) => s.auth), [null]);
  });
  await srv.close();
  await other.close();
});

// ---------------------------------------------------------------- F8: declared length

function closeDelimited(bytes: Uint8Array) {
  return rawServer(async (conn) => {
    await writeAll(conn, "HTTP/1.0 200 OK\r\n\r\n");
    await writeAll(conn, bytes);
    conn.close();
  });
}

Deno.test("io_download F8: a close-delimited (possibly truncated) body is not cached as complete", async () => {
  const half = content(8216, 4);
  const srv = closeDelimited(half);
  await withTempDir(async (cacheDir) => {
    const url = srv.url + "unet/model.onnx_data";
    await rejectsClearly(
      fetchToCache(url, { cacheDir }),
      url,
      /no Content-Length.*truncated.*nothing was cached/,
    );
    assert.equal(await exists(cachePathFor(url, cacheDir)), false);
    assert.deepEqual((await tree(cacheDir)).filter((p) => /tmp|part|lock|sha256/.test(p)), []);
  });
  await srv.close();
});

Deno.test("io_download F8: a close-delimited body is accepted when sha256 vouches for it", async () => {
  const bytes = content(5000, 5);
  const srv = closeDelimited(bytes);
  await withTempDir(async (cacheDir) => {
    const path = await fetchToCache(srv.url + "x.bin", { cacheDir, sha256: sha(bytes) });
    assert.deepEqual(await Deno.readFile(path), bytes);
  });
  await srv.close();
});

Deno.test("io_download F8: a close-delimited truncated body with sha256 is a digest mismatch", async () => {
  const bytes = content(5000, 5);
  const srv = closeDelimited(bytes.subarray(0, 2500));
  await withTempDir(async (cacheDir) => {
    const url = srv.url + "x.bin";
    await rejectsClearly(
      fetchToCache(url, { cacheDir, sha256: sha(bytes) }),
      url,
      /sha256 mismatch/,
    );
    assert.equal(await exists(cachePathFor(url, cacheDir)), false);
  });
  await srv.close();
});

Deno.test("io_download F8: fewer bytes than Content-Length (connection closed): interrupted, no final file", async () => {
  const srv = rawServer(async (conn) => {
    await writeAll(conn, "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + "y".repeat(2000));
    conn.close();
  });
  await withTempDir(async (cacheDir) => {
    const url = srv.url + "x.bin";
    await rejectsClearly(
      fetchToCache(url, { cacheDir, retries: 0 }),
      url,
      /interrupted after \d+ of 5000 bytes/,
    );
    assert.equal(await exists(cachePathFor(url, cacheDir)), false);
  });
  await srv.close();
});

Deno.test("io_download F8: a truncated chunked body (no final chunk) is interrupted, not cached", async () => {
  const srv = rawServer(async (conn) => {
    await writeAll(
      conn,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n",
    );
    conn.close();
  });
  await withTempDir(async (cacheDir) => {
    const url = srv.url + "x.bin";
    await rejectsClearly(fetchToCache(url, { cacheDir, retries: 0 }), url, /interrupted/);
    assert.equal(await exists(cachePathFor(url, cacheDir)), false);
  });
  await srv.close();
});

Deno.test("io_download F8: a complete chunked body is framed and cached", async () => {
  const srv = rawServer(async (conn) => {
    await writeAll(
      conn,
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
    );
    conn.close();
  });
  await withTempDir(async (cacheDir) => {
    const path = await fetchToCache(srv.url + "x.bin", { cacheDir });
    assert.equal(await Deno.readTextFile(path), "0123456789abcdef");
  });
  await srv.close();
});

Deno.test("io_download F8: a 206 answer to a request without Range is refused", async () => {
  const srv = rawServer(async (conn) => {
    await writeAll(
      conn,
      "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-3/10\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd",
    );
    conn.close();
  });
  await withTempDir(async (cacheDir) => {
    await assert.rejects(fetchToCache(srv.url + "x.bin", { cacheDir }), HttpStatusError);
    assert.equal(await exists(cachePathFor(srv.url + "x.bin", cacheDir)), false);
  });
  await srv.close();
});

Deno.test("io_download: interrupted without validators says nothing was kept, and none is", async () => {
  const srv = versionServer({ dropFirst: true, noValidators: true, pace: 5 });
  await withTempDir(async (cacheDir) => {
    const e = await rejectsClearly(
      fetchToCache(srv.url, { cacheDir, retries: 0 }),
      srv.url,
      /interrupted/,
    );
    assert.match(e.message, /nothing was kept/);
    assert.equal(await exists(cachePathFor(srv.url, cacheDir) + PART_SUFFIX), false);
  });
  await srv.close();
});

Deno.test("io_download: interrupted with an ETag keeps the part and its validators, as the message says", async () => {
  const srv = versionServer({ dropFirst: true, pace: 5 });
  await withTempDir(async (cacheDir) => {
    const final = cachePathFor(srv.url, cacheDir);
    const e = await rejectsClearly(
      fetchToCache(srv.url, { cacheDir, retries: 0 }),
      srv.url,
      /interrupted/,
    );
    assert.ok(e.message.includes(final + PART_SUFFIX + " is kept"));
    assert.ok((await Deno.stat(final + PART_SUFFIX)).size > 0);
    assert.equal(JSON.parse(await Deno.readTextFile(final + RESUME_SUFFIX)).etag, '"v1"');
  });
  await srv.close();
});

// ---------------------------------------------------------------- F14 / H28: cache and HTTP errors

Deno.test("io_download F14: cacheDir is a file: clear error naming cacheDir, no request", async () => {
  const srv = versionServer();
  await withTempDir(async (dir) => {
    const file = join(dir, "notadir");
    await Deno.writeTextFile(file, "");
    await rejectsClearly(fetchToCache(srv.url, { cacheDir: file }), "cacheDir", /not a directory/);
    assert.equal(srv.state.log.length, 0);
  });
  await srv.close();
});

Deno.test("io_download F14: a file where the entry's folder should be: clear error naming cacheDir", async () => {
  const srv = versionServer();
  await withTempDir(async (cacheDir) => {
    const host = join(cachePathFor(srv.url, cacheDir), "..", "..");
    await Deno.writeTextFile(host, "in the way");
    await rejectsClearly(fetchToCache(srv.url, { cacheDir }), "cacheDir", /not a directory/);
    assert.equal(srv.state.log.length, 0);
  });
  await srv.close();
});

/** Whether a private mount namespace (to remount a folder read-only) can be made here. */
const canUnshare = Deno.build.os === "linux" &&
  await new Deno.Command("unshare", { args: ["-m", "true"], stdout: "null", stderr: "null" })
    .output().then((o) => o.code === 0, () => false);

Deno.test({
  name: "io_download H28: a read-only cache directory: clear error naming cacheDir",
  ignore: !canUnshare,
  fn: async () => {
    const srv = versionServer();
    await withTempDir(async (cacheDir) => {
      const mod = new URL("../../lib/models/download.ts", import.meta.url).href;
      const code = `import { fetchToCache } from ${JSON.stringify(mod)};
        await fetchToCache(${JSON.stringify(srv.url)}, { cacheDir: ${JSON.stringify(cacheDir)} })
          .then(() => console.log("ok"), (e) => console.log(e.name + "|" + e.message));`;
      const script =
        `mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && exec "$2" eval "$3"`;
      const out = await new Deno.Command("unshare", {
        args: ["-m", "sh", "-c", script, "sh", cacheDir, Deno.execPath(), code],
        stdout: "piped",
        stderr: "piped",
      }).output().catch(() => undefined);
      assert.ok(out !== undefined && out.code === 0, "unshare -m with a read-only bind mount");
      const text = new TextDecoder().decode(out.stdout).trim();
      assert.match(text, /^AttnkitError\|cacheDir: .*read-only/);
      assert.equal(srv.state.log.length, 0);
    });
    await srv.close();
  },
});

Deno.test({
  name: "io_download H28: a cache directory without write permission: clear error naming cacheDir",
  ignore: Deno.build.os === "windows" || Deno.uid() === 0, // root writes anyway
  fn: async () => {
    await withTempDir(async (cacheDir) => {
      await Deno.chmod(cacheDir, 0o555);
      try {
        await rejectsClearly(
          fetchToCache("http://127.0.0.1:9/x.bin", { cacheDir }),
          "cacheDir",
          /permission denied/,
        );
      } finally {
        await Deno.chmod(cacheDir, 0o755);
      }
    });
  },
});

for (const status of [403, 500, 503]) {
  Deno.test(`io_download: HTTP ${status} is an HttpStatusError naming the url; nothing left`, async () => {
    const server = Deno.serve(
      { port: 0, hostname: "127.0.0.1", onListen() {} },
      () => new Response("x", { status }),
    );
    const url = `http://127.0.0.1:${server.addr.port}/x.bin`;
    await withTempDir(async (cacheDir) => {
      await assert.rejects(
        fetchToCache(url, { cacheDir }),
        (e: unknown) => e instanceof HttpStatusError && e.status === status && e.argument === url,
      );
      assert.deepEqual(
        (await tree(cacheDir)).filter((p) => /\.(bin|part|attnkit-\w+)$/.test(p)),
        [],
      );
    });
    await server.shutdown();
  });
}

for (
  const [name, opts, argument] of [
    ["idleTimeoutMs: -1", { idleTimeoutMs: -1 }, "idleTimeoutMs"],
    ["idleTimeoutMs: NaN", { idleTimeoutMs: NaN }, "idleTimeoutMs"],
    ["totalTimeoutMs: Infinity", { totalTimeoutMs: Infinity }, "totalTimeoutMs"],
    ["retries: 1.5", { retries: 1.5 }, "retries"],
    ["maxRedirects: -2", { maxRedirects: -2 }, "maxRedirects"],
    ["lockStaleMs: 0", { lockStaleMs: 0 }, "lockStaleMs"],
    ["cacheDir: ''", { cacheDir: "" }, "cacheDir"],
    ["headers with a bad name", { headers: { "bad header": "x" } }, "headers"],
    ["sha256: 'abc'", { sha256: "abc" }, "sha256"],
  ] as const
) {
  Deno.test(`io_download: option ${name} is refused naming it`, async () => {
    await withTempDir(async (cacheDir) => {
      await rejectsClearly(
        fetchToCache("http://127.0.0.1:9/x.bin", { cacheDir, ...opts }),
        argument,
        /expected|not valid/,
      );
    });
  });
}

Deno.test("io download: private and local addresses (the rule against redirects into the LAN)", () => {
  for (
    const u of [
      "http://127.0.0.1:9/x",
      "http://localhost/x",
      "http://10.1.2.3/x",
      "http://172.20.0.1/x",
      "http://192.168.0.10/x",
      "http://169.254.169.254/latest/meta-data",
      "http://0.0.0.0/x",
      "http://[::1]/x",
      "http://[fd00::1]/x",
      "http://[fe80::1]/x",
    ]
  ) assert.ok(isPrivateUrl(u), u);
  for (const u of ["https://huggingface.co/x", "https://172.32.0.1/x", "https://8.8.8.8/x"]) {
    assert.ok(!isPrivateUrl(u), u);
  }
});
