/**
 * Download cache against a local HTTP server (127.0.0.1, random port): caching, resume with
 * Range, servers that ignore Range, checksum failures, HTTP errors, abort, progress.
 *
 * @module
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { AttnkitError } from "../lib/errors.ts";
import { cachePathFor, DIGEST_SUFFIX, PART_SUFFIX } from "../lib/models/cache.ts";
import {
  fetchToCache,
  formatProgress,
  HttpStatusError,
  parseContentRange,
  progressBar,
} from "../lib/models/download.ts";
import { HF_TINY, withServer } from "./models_support.ts";

const FILE = "unet/model.onnx"; // ~20 KB, several 4 KiB chunks
const original = await Deno.readFile(join(HF_TINY, FILE));
const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("download: cache paths", async (t) => {
  await t.step("host_port and decoded path segments", () => {
    assert.equal(
      cachePathFor("http://127.0.0.1:8080/org/repo/resolve/main/unet/model.onnx", "/c"),
      join("/c", "127.0.0.1_8080", "org", "repo", "resolve", "main", "unet", "model.onnx"),
    );
    assert.equal(
      cachePathFor("https://h.test/a%20b/x.json", "/c"),
      join("/c", "h.test", "a b", "x.json"),
    );
  });
  await t.step("query kept in the name; '..' and non-http refused", () => {
    assert.equal(
      cachePathFor("https://h.test/x.bin?rev=2", "/c"),
      join("/c", "h.test", "x.bin_rev%3D2"),
    );
    for (
      const bad of ["https://h.test/a%2f..%2fx", "file:///etc/passwd", "https://h.test/dir/", "x"]
    ) {
      assert.throws(() => cachePathFor(bad, "/c"), AttnkitError, bad);
    }
  });
  await t.step("Content-Range parsing", () => {
    assert.deepEqual(parseContentRange("bytes 10-19/20"), { start: 10, end: 19, total: 20 });
    assert.deepEqual(parseContentRange("bytes 0-9/*"), { start: 0, end: 9, total: undefined });
    assert.equal(parseContentRange("bytes */20"), undefined);
  });
});

Deno.test("download: fetchToCache against a local server", async (t) => {
  await t.step(
    "downloads once; equal bytes; digest recorded; second call makes no request",
    async () => {
      await withServer(HF_TINY, async (server, cacheDir) => {
        const url = server.url + FILE;
        const seen: [number, number | undefined][] = [];
        const path = await fetchToCache(url, {
          cacheDir,
          sha256: sha(original),
          onProgress: (d, n) => seen.push([d, n]),
        });
        assert.equal(path, cachePathFor(url, cacheDir));
        assert.deepEqual(await Deno.readFile(path), original);
        assert.equal(
          JSON.parse(await Deno.readTextFile(path + DIGEST_SUFFIX)).sha256,
          sha(original),
        );
        assert.equal(await exists(path + PART_SUFFIX), false);
        assert.ok(seen.length >= 3, "progress in several steps");
        assert.deepEqual(seen.at(-1), [original.length, original.length]);
        for (let i = 1; i < seen.length; i++) assert.ok(seen[i][0] >= seen[i - 1][0]);
        assert.equal(server.requests.length, 1);
        assert.equal(await fetchToCache(url, { cacheDir }), path);
        assert.equal(await fetchToCache(url, { cacheDir, sha256: sha(original) }), path);
        assert.equal(server.requests.length, 1);
      });
    },
  );

  await t.step(
    "dropped connection, no retries: nothing under the final name, part kept, next call resumes with Range",
    async () => {
      await withServer(HF_TINY, async (server, cacheDir) => {
        const url = server.url + FILE;
        const final = cachePathFor(url, cacheDir);
        server.faults.drop = { [FILE]: 10000 };
        await assert.rejects(
          fetchToCache(url, { cacheDir, retries: 0 }),
          (e: unknown) =>
            e instanceof AttnkitError && e.argument === url && /interrupted/.test(e.message),
        );
        assert.equal(await exists(final), false);
        const partLen = (await Deno.stat(final + PART_SUFFIX)).size;
        assert.ok(partLen > 0 && partLen <= 10000, `part has ${partLen} bytes`);
        assert.deepEqual(await Deno.readFile(final + PART_SUFFIX), original.subarray(0, partLen));
        server.faults.drop = undefined;
        const path = await fetchToCache(url, { cacheDir, sha256: sha(original), retries: 0 });
        assert.deepEqual(await Deno.readFile(path), original);
        assert.equal(await exists(final + PART_SUFFIX), false);
        assert.deepEqual(server.requests.map((r) => [r.range, r.status]), [
          [null, 200],
          [`bytes=${partLen}-`, 206],
        ]);
      });
    },
  );

  await t.step("a drop is resumed within the same call (default retries)", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      server.faults.drop = { [FILE]: 6000 };
      server.faults.dropOnce = true;
      const path = await fetchToCache(server.url + FILE, { cacheDir, sha256: sha(original) });
      assert.deepEqual(await Deno.readFile(path), original);
      assert.equal(server.requests.length, 2);
      assert.equal(server.requests[1].status, 206);
      assert.match(server.requests[1].range ?? "", /^bytes=\d+-$/);
    });
  });

  await t.step("a server that answers 200 to Range: the part restarts from zero", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      const url = server.url + FILE;
      const final = cachePathFor(url, cacheDir);
      server.faults.drop = { [FILE]: 8192 };
      await assert.rejects(fetchToCache(url, { cacheDir, retries: 0 }), /is kept/);
      server.faults.drop = undefined;
      // A part whose bytes are wrong: appending to it would corrupt the file.
      const partLen = (await Deno.stat(final + PART_SUFFIX)).size;
      await Deno.writeFile(final + PART_SUFFIX, new Uint8Array(partLen).fill(7));
      server.faults.ignoreRange = true;
      const path = await fetchToCache(url, { cacheDir, sha256: sha(original) });
      assert.deepEqual(await Deno.readFile(path), original);
      assert.deepEqual(server.requests.map((r) => [r.range, r.status]), [
        [null, 200],
        [`bytes=${partLen}-`, 200],
      ]);
    });
  });

  await t.step(
    "a part without a validator record is not resumed (restarts from zero)",
    async () => {
      await withServer(HF_TINY, async (server, cacheDir) => {
        const url = server.url + FILE;
        const final = cachePathFor(url, cacheDir);
        await Deno.mkdir(join(final, ".."), { recursive: true });
        await Deno.writeFile(final + PART_SUFFIX, new Uint8Array(5000).fill(7));
        const path = await fetchToCache(url, { cacheDir, sha256: sha(original) });
        assert.deepEqual(await Deno.readFile(path), original);
        assert.deepEqual(server.requests.map((r) => [r.range, r.status]), [[null, 200]]);
        assert.equal(await exists(final + PART_SUFFIX), false);
      });
    },
  );

  await t.step("a complete part (416 on resume) is finished without re-downloading", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      const url = server.url + FILE;
      const final = cachePathFor(url, cacheDir);
      server.faults.drop = { [FILE]: 4096 };
      await assert.rejects(fetchToCache(url, { cacheDir, retries: 0 }), /is kept/);
      server.faults.drop = undefined;
      await Deno.writeFile(final + PART_SUFFIX, original); // as if the rest had arrived
      const path = await fetchToCache(url, { cacheDir, sha256: sha(original) });
      assert.deepEqual(await Deno.readFile(path), original);
      assert.deepEqual(server.requests.map((r) => r.status), [200, 416]);
    });
  });

  await t.step(
    "checksum mismatch: AttnkitError with url, expected and actual; nothing left",
    async () => {
      await withServer(HF_TINY, async (server, cacheDir) => {
        const url = server.url + FILE;
        const final = cachePathFor(url, cacheDir);
        server.faults.corrupt = new Set([FILE]);
        const corrupted = original.slice();
        corrupted[corrupted.length >> 1] ^= 0xff;
        await assert.rejects(
          fetchToCache(url, { cacheDir, sha256: sha(original) }),
          (e: unknown) =>
            e instanceof AttnkitError && e.argument === url && e.message.includes(sha(original)) &&
            e.message.includes(sha(corrupted)),
        );
        assert.equal(await exists(final), false);
        assert.equal(await exists(final + PART_SUFFIX), false);
      });
    },
  );

  await t.step(
    "a cached file whose digest differs from the one asked for is fetched again",
    async () => {
      await withServer(HF_TINY, async (server, cacheDir) => {
        const url = server.url + FILE;
        server.faults.corrupt = new Set([FILE]);
        await fetchToCache(url, { cacheDir }); // no checksum: the corrupted copy is cached
        server.faults.corrupt = undefined;
        const path = await fetchToCache(url, { cacheDir, sha256: sha(original) });
        assert.deepEqual(await Deno.readFile(path), original);
        assert.equal(server.requests.length, 2);
      });
    },
  );

  await t.step("HTTP 404: HttpStatusError naming the url and status; no files", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      const url = server.url + "nope/model.onnx";
      await assert.rejects(
        fetchToCache(url, { cacheDir }),
        (e: unknown) =>
          e instanceof HttpStatusError && e instanceof AttnkitError && e.status === 404 &&
          e.argument === url && /HTTP 404/.test(e.message),
      );
      assert.equal(await exists(cachePathFor(url, cacheDir)), false);
      assert.equal(await exists(cachePathFor(url, cacheDir) + PART_SUFFIX), false);
    });
  });

  await t.step("bad sha256 argument is refused before any request", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      await assert.rejects(
        fetchToCache(server.url + FILE, { cacheDir, sha256: "abc" }),
        (e: unknown) => e instanceof AttnkitError && e.argument === "sha256",
      );
      assert.equal(server.requests.length, 0);
    });
  });

  await t.step("abort mid-transfer: rejects, keeps the part, no final file", async () => {
    await withServer(HF_TINY, async (server, cacheDir) => {
      const url = server.url + FILE;
      const ctl = new AbortController();
      await assert.rejects(
        fetchToCache(url, {
          cacheDir,
          signal: ctl.signal,
          onProgress: (done) => {
            if (done > 0) ctl.abort();
          },
        }),
      );
      assert.equal(await exists(cachePathFor(url, cacheDir)), false);
      assert.ok((await Deno.stat(cachePathFor(url, cacheDir) + PART_SUFFIX)).size > 0);
    });
  });
});

Deno.test("download: progress bar", async (t) => {
  await t.step("format", () => {
    assert.equal(
      formatProgress("unet/model.onnx", 512, 2048, 8),
      "unet/model.onnx [##------]  25%  512 B / 2.0 KiB",
    );
    assert.equal(formatProgress("x", 3 * 1024 * 1024, undefined), "x  3.0 MiB");
  });
  await t.step("draws when enabled, ends with a newline at 100%, silent when disabled", () => {
    const out: string[] = [];
    const bar = progressBar("f", { enabled: true, write: (s) => out.push(s), intervalMs: 0 });
    bar(0, 100);
    bar(50, 100);
    bar(100, 100);
    bar(100, 100);
    assert.equal(out.length, 3);
    assert.ok(out.every((s) => s.startsWith("\r")));
    assert.match(out[2], /100%.*\n$/);
    const quiet: string[] = [];
    const off = progressBar("f", { enabled: false, write: (s) => quiet.push(s) });
    off(1, 2);
    off(2, 2);
    assert.equal(quiet.length, 0);
  });
  await t.step("redraws are throttled but the final state always shows", () => {
    const out: string[] = [];
    const bar = progressBar("f", { enabled: true, write: (s) => out.push(s), intervalMs: 60_000 });
    for (let i = 0; i <= 100; i++) bar(i, 100);
    assert.equal(out.length, 2);
    assert.match(out[1], /100%/);
  });
});
