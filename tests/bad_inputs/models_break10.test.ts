/**
 * Bad-input corpus, issue 10 break test: the findings of the attack on the "safe model loading"
 * work, each reproduced against the code before its fix (see the report) and kept here.
 *
 * - F1 bypass: tags wider than 32 bits hide external data from the walker (graph, in-tensor,
 *   node-attribute and UNet/SD 1.5 variants), over-long tags, non-UTF-8 and BOM locations;
 *   execution providers and externalData validated in createSession.
 * - F2: URL roots follow redirects only under the root.
 * - F3: URL roots time out (idle, total) and cap sizes; local files are capped before reading.
 * - F4: unknown fields, `strings` entries and packed dims are charged what they cost.
 * - F5: a file swapped between the confinement check and the read is refused; SD 1.5 hands
 *   onnxruntime the bytes it scanned.
 * - F6: a root URL's userinfo appears in no message and is never sent.
 * - F7: bare unnamed errors become AttnkitErrors naming the argument.
 * - F8: config values (vocab ids, model_max_length, special tokens, model_index components,
 *   final alpha-bar, distinct UNet inputs, image_size, model name, external-data ranges).
 *
 * Fixtures: `make_break10_fixtures.py` (a few hundred bytes each); everything else is built here.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeModel } from "../../lib/onnx/proto.ts";
import { externalDataEntries, externalDataRefs } from "../../lib/onnx/external.ts";
import { createSession } from "../../lib/onnx/ort.ts";
import { loadShapesModel } from "../../lib/models/shapes.ts";
import { loadSd15Model } from "../../lib/models/sd15_model.ts";
import { parseSchedulerConfig, resolveSd15Files } from "../../lib/models/sd15.ts";
import { modelRoot, readFileChecked, readTextChecked } from "../../lib/models/root.ts";
import { decodeLatents } from "../../lib/runtime/sample.ts";
import { tensor } from "../../lib/tensor.ts";
import {
  cat,
  Corpus,
  editJson,
  fixture,
  hfCopy,
  type JsonObject,
  nodeAvailable,
  REPO,
  shapesCopy,
  varint,
} from "./models_support.ts";

const corpus = new Corpus("models_break10");
const SHAPES = new URL("weights/shapes/", REPO).pathname;
const HIDDEN = ["b10_tag5_graph", "b10_tag5_in_tensor", "b10_tag5_attribute"];

/** A length-delimited field: tag (field << 3 | 2), length, bytes. */
const ld = (field: number, b: Uint8Array | number[]): Uint8Array => {
  const body = b instanceof Uint8Array ? b : Uint8Array.from(b);
  return cat(varint((field << 3) | 2), varint(body.length), body);
};
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const repeat = (pair: number[], times: number): Uint8Array => {
  const out = new Uint8Array(pair.length * times);
  for (let i = 0; i < out.length; i++) out[i] = pair[i % pair.length];
  return out;
};

/** The mk_bombs.py model: one Relu node, opset 13, plus extra graph / model bytes. */
function bombModel(
  graphExtra: Uint8Array = new Uint8Array(0),
  modelExtra: Uint8Array = new Uint8Array(0),
) {
  const node = cat(ld(1, ascii("x")), ld(2, ascii("y")), ld(4, ascii("Relu")));
  const graph = cat(ld(1, node), graphExtra);
  return cat([0x08, 0x08], ld(7, graph), ld(8, [0x10, 0x0d]), modelExtra);
}

async function withEvilDecoder(name: string): Promise<string> {
  const dir = await shapesCopy();
  await Deno.writeFile(join(dir, "vae_decoder.onnx"), await fixture(`${name}.onnx`));
  return dir;
}

// --- F1 bypass: tags wider than 32 bits ---------------------------------------------------

Deno.test("break10 F1: tags of 2^32 or more, over-long tags, refused by the walker and the codec", async () => {
  for (const name of [...HIDDEN, "b10_overlong_tag"]) {
    const bytes = await fixture(`${name}.onnx`);
    const says = name === "b10_overlong_tag" ? "over-long tag" : "2^32 or more";
    await corpus.rejects(`${name}: externalDataRefs`, () => externalDataRefs(bytes, name), {
      argument: name,
      says: [says, "byte offset"],
    });
    await corpus.rejects(`${name}: decodeModel (UNet path: decode, re-encode)`, () => {
      decodeModel(bytes, name);
    }, { argument: name, says: [says] });
    await corpus.rejects(`${name}: createSession`, () => createSession(bytes, { source: name }), {
      argument: name,
      says: [says],
    });
  }
});

Deno.test("break10 F1: a second ModelProto.graph (protobuf merges it) is refused", async () => {
  const bytes = cat(bombModel(), ld(7, ld(1, ld(4, ascii("Relu")))));
  await corpus.rejects("graph twice", () => {
    decodeModel(bytes, "twice.onnx");
  }, { argument: "twice.onnx", says: ["graph appears twice"] });
});

Deno.test("break10 F1: external-data locations decode strictly (no lossy UTF-8, BOM kept)", async () => {
  const bad = await fixture("b10_location_not_utf8.onnx");
  await corpus.rejects("location not UTF-8", () => externalDataRefs(bad, "m.onnx"), {
    argument: "m.onnx",
    says: ["not valid UTF-8"],
  });
  const bom = await fixture("b10_location_bom.onnx");
  await corpus.works(
    "location with a BOM keeps it",
    () => externalDataRefs(bom, "m.onnx"),
    (r) => assert.deepEqual(r, ["\ufeffsecret.txt"]),
  );
  // The root holds secret.txt, not the BOM name: the load must ask for the BOM name itself.
  const dir = await withEvilDecoder("b10_location_bom");
  await Deno.writeTextFile(join(dir, "secret.txt"), "inside-the-root-but-not-what-was-named");
  await corpus.rejects("location with a BOM: a shapes copy", () => loadShapesModel({ dir }), {
    argument: /vae_decoder/,
    says: ["\ufeffsecret.txt", "missing"],
  });
});

Deno.test("break10 F1: shapes copies and SD 1.5 copies hiding the secret tensor are refused", async () => {
  const node = await nodeAvailable();
  for (const name of HIDDEN) {
    const dir = await withEvilDecoder(name);
    for (const ep of node ? ["wasm", "node"] as const : ["wasm"] as const) {
      await corpus.rejects(
        `${name}: loadShapesModel (${ep})`,
        () => loadShapesModel({ dir, session: { executionProviders: [ep] } }),
        { argument: /files\.vae_decoder/, says: ["2^32 or more"] },
      );
    }
  }
  // The UNet variant: the walker saw nothing, decodeModel kept the hidden bytes as an unknown
  // field, and encodeModel wrote them back into the session's bytes.
  const unetDir = await shapesCopy();
  await Deno.writeFile(join(unetDir, "unet.onnx"), await fixture("b10_tag5_graph.onnx"));
  await corpus.rejects("UNet variant: shapes copy", () => loadShapesModel({ dir: unetDir }), {
    argument: /files\.unet/,
    says: ["2^32 or more"],
  });
  for (const part of ["unet", "vae_decoder"]) {
    const dir = await hfCopy(async (d) => {
      await Deno.writeFile(join(d, part, "model.onnx"), await fixture("b10_tag5_in_tensor.onnx"));
    });
    for (const ep of node ? ["wasm", "node"] as const : ["wasm"] as const) {
      await corpus.rejects(
        `SD 1.5 copy, ${part} hides the tensor (${ep})`,
        () =>
          loadSd15Model(dir, {
            imageSize: [64, 64],
            executionProviders: [ep] as unknown as ("wasm" | "webgpu")[],
          }),
        { argument: `${part}/model.onnx`, says: ["2^32 or more"] },
      );
    }
  }
});

Deno.test("break10 F1/F7: createSession validates providers and external data", async () => {
  const dec = await Deno.readFile(join(SHAPES, "vae_decoder.onnx"));
  const cases: [string, Record<string, unknown>, string | RegExp, string][] = [
    ["providers as a string", { executionProviders: "wasm" }, "executionProviders", "array"],
    ["unknown provider", { executionProviders: ["cuda"] }, "executionProviders", '"node"'],
    ["empty providers", { executionProviders: [] }, "executionProviders", "non-empty"],
    ["threads -1", { threads: -1 }, "threads", "[1, 256]"],
    ["externalData not an array", { externalData: "x" }, "externalData", "array"],
    [
      "externalData data a string (ORT would fetch it)",
      {
        externalData: [{ path: "x", data: "https://example.com/x" }],
      },
      "externalData[0]",
      "Uint8Array",
    ],
    ["externalData null entry", { externalData: [null] }, "externalData[0]", "Uint8Array"],
  ];
  for (const [label, opts, argument, says] of cases) {
    await corpus.rejects(label, () => createSession(dec, opts), { argument, says: [says] });
  }
  await corpus.rejects(
    "loadShapesModel session.executionProviders as a string",
    () => loadShapesModel({ session: { executionProviders: "wasm" as unknown as ["wasm"] } }),
    { argument: "executionProviders" },
  );
  // "node" for SD 1.5 (typed wasm | webgpu) goes through the same external-data rule.
  const dir = await hfCopy(async (d) => {
    await Deno.writeFile(
      join(d, "vae_decoder", "model.onnx"),
      await fixture("f1_evil_decoder.onnx"),
    );
  });
  await corpus.rejects(
    "loadSd15Model executionProviders ['node'] with the F1 decoder",
    () =>
      loadSd15Model(dir, {
        imageSize: [64, 64],
        executionProviders: ["node"] as unknown as ["wasm"],
      }),
    { argument: /vae_decoder/, says: ["secret.txt"] },
  );
  await corpus.rejects(
    "loadSd15Model executionProviders ['cuda']",
    () =>
      loadSd15Model(new URL("tests/fixtures/hf_tiny/", REPO).pathname, {
        imageSize: [64, 64],
        executionProviders: ["cuda"] as unknown as ["wasm"],
      }),
    { argument: "executionProviders", says: ['"cuda"'] },
  );
});

// --- F2, F3, F6: URL roots ------------------------------------------------------------------

interface Served {
  url: string;
  hits: string[];
  close: () => Promise<void>;
}

function serve(handler: (path: string, req: Request) => Response | Promise<Response>): Served {
  const hits: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    hits.push(`${path} auth=${req.headers.get("authorization")}`);
    return handler(path, req);
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/`,
    hits,
    close: () => server.shutdown(),
  };
}

/** Serves weights/shapes under /m/, with `redirects` answered by a 302 to the given target. */
function shapesServer(redirects: Record<string, string> = {}): Served {
  return serve(async (path) => {
    if (path in redirects) {
      return new Response(null, { status: 302, headers: { location: redirects[path] } });
    }
    if (!path.startsWith("/m/")) return new Response("no", { status: 404 });
    try {
      return new Response(await Deno.readFile(join(SHAPES, path.slice(3))));
    } catch {
      return new Response("no", { status: 404 });
    }
  });
}

Deno.test("break10 F2: URL roots follow only redirects that stay under the root", async () => {
  const other = serve(() => new Response("INTERNAL-ONLY-CREDENTIALS"));
  const host = shapesServer({
    "/m/tokenizer.json": `${other.url}latest/meta-data`,
    "/m/a.json": "/m/config.json",
    "/m/b.json": "/elsewhere/config.json",
    "/m/loop.json": "/m/loop.json",
  });
  try {
    await corpus.rejects(
      "cross-origin redirect (SSRF)",
      () => loadShapesModel({ dir: `${host.url}m/` }),
      {
        argument: "config.json files.tokenizer",
        says: ["tokenizer.json redirects to", `${other.url}latest/meta-data`, `${host.url}m/`],
      },
    );
    assert.equal(other.hits.length, 0, "the other origin must never be asked");
    const root = modelRoot(`${host.url}m/`);
    await corpus.works(
      "redirect under the root",
      () => root.readJsonObject("a.json", "a"),
      (v) => assert.equal(v.name, "attnkit-shapes"),
    );
    await corpus.rejects(
      "same origin, outside the root prefix",
      () => root.readBytes("b.json", "b"),
      {
        argument: "b",
        says: ["/elsewhere/config.json", "outside the model root"],
      },
    );
    await corpus.rejects(
      "redirectOrigins must be https origins",
      () => modelRoot(`${host.url}m/`, { redirectOrigins: [other.url] }),
      { argument: "redirectOrigins" },
    );
    await corpus.rejects("redirect loop", () => root.readBytes("loop.json", "loop"), {
      argument: "loop",
      says: ["more than 5 times"],
    });
  } finally {
    await host.close();
    await other.close();
  }
});

Deno.test("break10 F3: URL roots time out and cap sizes; local files are capped before reading", async () => {
  // A server that sends headers and a few bytes, then nothing (probe_stall.ts).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const trickle = new Set<number>();
  (async () => {
    for await (const c of listener) {
      held.push(c);
      await c.read(new Uint8Array(4096));
      await c.write(ascii('HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n{"name":'));
      if (trickle.size) {
        (async () => {
          try {
            for (let i = 0; i < 100; i++) {
              await new Promise((r) => setTimeout(r, 50));
              await c.write(ascii(" "));
            }
          } catch { /* closed */ }
        })();
      }
    }
  })().catch(() => {});
  const url = `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}/`;
  try {
    const t0 = performance.now();
    await corpus.rejects(
      "stalled response: idle timeout",
      () => loadShapesModel({ dir: url, limits: { idleTimeoutMs: 300 } }),
      { argument: "config.json", says: ["timed out", "no bytes for 300 ms"] },
    );
    assert.ok(performance.now() - t0 < 5000, "the idle timeout must end the wait");
    trickle.add(1);
    await corpus.rejects(
      "trickling response: total timeout",
      () => modelRoot(url, { idleTimeoutMs: 1000, totalTimeoutMs: 600 }).readBytes("x", "x"),
      { argument: "x", says: ["timed out", "over 600 ms in all"] },
    );
  } finally {
    listener.close();
    for (const c of held) {
      try {
        c.close();
      } catch { /* already closed */ }
    }
  }
  const big = serve((path) =>
    path === "/declared" ? new Response(new Uint8Array(5000)) : new Response(
      new ReadableStream({
        start(c) {
          for (let i = 0; i < 10; i++) c.enqueue(new Uint8Array(1000));
          c.close();
        },
      }),
    )
  );
  try {
    const root = modelRoot(big.url, { maxFileBytes: 4096 });
    await corpus.rejects("declared size over the cap", () => root.readBytes("declared", "w"), {
      argument: "w",
      says: ["over the 4096-byte limit", "maxFileBytes"],
    });
    await corpus.rejects("streamed size over the cap", () => root.readBytes("streamed", "w"), {
      argument: "w",
      says: ["limit"],
    });
  } finally {
    await big.close();
  }
  await corpus.rejects("bad maxFileBytes", () => modelRoot(SHAPES, { maxFileBytes: -1 }), {
    argument: "maxFileBytes",
  });
  // SD 1.5 reads its JSON and merges by path: capped too.
  const sparseJson = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.truncate(sparseJson, 2 ** 40);
  await corpus.rejects(
    "sparse 1 TiB vocab.json read by path",
    () => readTextChecked(sparseJson, "vocab"),
    { argument: "vocab", says: ["over the 64.0 MiB limit"] },
  );
  await Deno.remove(sparseJson);
  // Sparse files: 1 TiB tokenizer.json, 8 GiB decoder (probe_ln.ts sparse, sparse2).
  for (
    const [file, size, limit] of [["tokenizer.json", 2 ** 40, "64.0 MiB"], [
      "vae_decoder.onnx",
      2 ** 33,
      "2.0 GiB",
    ]] as const
  ) {
    const dir = await shapesCopy();
    await Deno.truncate(join(dir, file), size);
    await corpus.rejects(`sparse ${file} of ${size} bytes`, () => loadShapesModel({ dir }), {
      argument: file === "tokenizer.json"
        ? "config.json files.tokenizer"
        : "config.json files.vae_decoder",
      says: [`over the ${limit} limit`],
    });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("break10 F6: a root URL's userinfo appears in no message and is never sent", async () => {
  const host = shapesServer();
  const withPw = host.url.replace("http://", "http://user:hunter2@");
  try {
    const e1 = await corpus.rejects(
      "userinfo: entry error",
      () => modelRoot(withPw).entry("../x", "files.unet"),
      { argument: "files.unet", says: ["leaves the model root", host.url] },
    );
    const e2 = await corpus.rejects(
      "userinfo: HTTP error",
      () => loadShapesModel({ dir: `${withPw}nope/` }),
      { argument: "config.json", says: ["HTTP 404"] },
    );
    const e3 = await corpus.rejects(
      "userinfo: bad scheme",
      () => modelRoot("ftp://user:hunter2@127.0.0.1/x"),
      { argument: "dir" },
    );
    const cacheDir = await Deno.makeTempDir();
    const e4 = await corpus.rejects(
      "userinfo: SD 1.5 URL root",
      () => loadSd15Model(`${withPw}nope/`, { cacheDir, progress: false }),
      { argument: "model_index.json", says: [`${host.url}nope/`] },
    );
    await Deno.remove(cacheDir, { recursive: true });
    for (const e of [e1, e2, e3, e4]) assert.ok(!e.message.includes("hunter2"), e.message);
    await corpus.works("userinfo: root label and href", () => modelRoot(withPw), (r) => {
      assert.ok(!r.label.includes("hunter2") && !r.href.includes("hunter2"));
    });
    assert.ok(host.hits.every((h) => h.endsWith("auth=null")), host.hits.join("\n"));
  } finally {
    await host.close();
  }
});

// --- F4: decode memory bound ------------------------------------------------------------------

Deno.test("break10 F4: unknown fields, strings entries and packed dims are charged their cost", async () => {
  const N = 8 << 20;
  const bombs: [string, () => Uint8Array][] = [
    ["A_unknown_top", () => bombModel(undefined, repeat([0x48, 0x00], N / 2))],
    [
      "J_attr_strings",
      () => bombModel(ld(1, ld(5, cat(ld(1, ascii("a")), repeat([0x4a, 0x00], N / 2))))),
    ],
    ["K_unknown_in_node", () => bombModel(ld(1, repeat([0x48, 0x00], N / 2)))],
    ["L_graph_vi_unknown", () => bombModel(ld(13, repeat([0x48, 0x00], N / 2)))],
    [
      "M_packed_dims_tensor",
      () => bombModel(ld(5, cat(ld(1, new Uint8Array(N).fill(1)), [0x10, 0x01]))),
    ],
  ];
  for (const [label, make] of bombs) {
    const bytes = make();
    await corpus.rejects(`bomb ${label}`, () => {
      decodeModel(bytes, label);
    }, { argument: label, says: ["refusing to decode"] });
  }
  // Real models still decode.
  const real: string[] = [];
  for (const e of Deno.readDirSync(SHAPES)) {
    if (e.name.endsWith(".onnx")) real.push(join(SHAPES, e.name));
  }
  const walk = (d: string): void => {
    for (const e of Deno.readDirSync(d)) {
      if (e.isDirectory) walk(join(d, e.name));
      else if (e.name.endsWith(".onnx")) real.push(join(d, e.name));
    }
  };
  walk(new URL("tests/fixtures/", REPO).pathname);
  for (const f of real) {
    await corpus.works(
      `real model decodes: ${f.slice(REPO.pathname.length)}`,
      async () => decodeModel(await Deno.readFile(f), f),
      (m) => assert.ok(m.graph.node.length > 0),
    );
  }
});

// --- F5: the file read is the file checked ----------------------------------------------------

Deno.test("break10 F5: a file swapped after the confinement check is refused", async () => {
  const outside = await Deno.makeTempFile({ suffix: ".json" });
  await Deno.writeTextFile(outside, JSON.stringify({ vocab: ["stolen"], max_length: 8 }));
  const swap = async (path: string): Promise<void> => {
    await Deno.rename(path, path + ".bak");
    await Deno.symlink(outside, path);
  };
  // (a) swapped right after realPath resolved it (probe_ln.ts "race").
  const realPath = Deno.realPath;
  const dirA = await shapesCopy();
  let swappedA = false;
  try {
    (Deno as { realPath: typeof Deno.realPath }).realPath = async (p: string | URL) => {
      const r = await realPath(p);
      if (!swappedA && String(p).endsWith("tokenizer.json")) {
        swappedA = true;
        await swap(r);
      }
      return r;
    };
    await corpus.rejects("swap after the check", () => loadShapesModel({ dir: dirA }), {
      argument: "config.json files.tokenizer",
      says: ["replaced between the confinement check and the read"],
    });
  } finally {
    (Deno as { realPath: typeof Deno.realPath }).realPath = realPath;
  }
  assert.ok(swappedA);
  // (b) swapped between the stat and the open.
  const open = Deno.open;
  const dirB = await shapesCopy();
  let swappedB = false;
  try {
    (Deno as { open: typeof Deno.open }).open = async (p: string | URL, o?: Deno.OpenOptions) => {
      if (!swappedB && String(p).endsWith("tokenizer.json")) {
        swappedB = true;
        await swap(String(p));
      }
      return await open(p, o);
    };
    await corpus.rejects("swap before the open", () => loadShapesModel({ dir: dirB }), {
      argument: "config.json files.tokenizer",
      says: ["replaced between the confinement check and the read"],
    });
  } finally {
    (Deno as { open: typeof Deno.open }).open = open;
  }
  assert.ok(swappedB);
  await corpus.works(
    "readFileChecked reads an untouched file",
    async () => await readFileChecked(await Deno.realPath(join(SHAPES, "config.json")), "c"),
    (b) => assert.equal(JSON.parse(new TextDecoder().decode(b)).name, "attnkit-shapes"),
  );
  // A path checked as real (what ModelRoot.local returns; SD 1.5 reads by it) that became a link.
  const linkDir = await Deno.makeTempDir();
  const linked = join(await Deno.realPath(linkDir), "model.onnx_data");
  await Deno.symlink(outside, linked);
  await corpus.rejects(
    "checked real path now a link",
    () => readFileChecked(linked, "unet external data", undefined, "real"),
    {
      argument: "unet external data",
      says: ["now resolves to", outside.split("/").pop()!],
    },
  );
  await Deno.remove(linkDir, { recursive: true });
  // SD 1.5: the scanned bytes are the bytes handed on (no second read).
  const hf = new URL("tests/fixtures/hf_tiny/", REPO).pathname;
  await corpus.works(
    "SD 1.5 keeps the scanned .onnx bytes",
    () => resolveSd15Files(hf),
    async (f) => {
      for (const part of [f.unet, f.textEncoder, f.vaeDecoder]) {
        assert.ok(part.bytes instanceof Uint8Array);
        assert.deepEqual(part.bytes, await Deno.readFile(part.model));
      }
    },
  );
  await Deno.remove(outside);
});

// --- F7: bare unnamed errors --------------------------------------------------------------------

Deno.test("break10 F7: argument errors name the argument", async () => {
  await corpus.rejects("loadShapesModel(null)", () => loadShapesModel(null as never), {
    argument: "opts",
  });
  const model = await loadShapesModel();
  try {
    await corpus.rejects("decodeLatents(model, null)", () => decodeLatents(model, null as never), {
      argument: "latents",
    });
    await corpus.rejects(
      "decodeLatents(null, latents)",
      () => decodeLatents(null as never, tensor([1, 4, 16, 16])),
      { argument: "model" },
    );
    const ctx = await model.encodeText(["a photo of three yellow hearts"]);
    await corpus.rejects(
      "denoise with data shorter than shape",
      () =>
        model.denoise(
          { shape: [1, 4, 16, 16], data: new Float32Array(10) } as never,
          500,
          ctx,
        ),
      { argument: "latents", says: ["needs 1024 values", "holds 10"] },
    );
    await corpus.rejects(
      "denoise with a negative dimension",
      () =>
        model.denoise({ shape: [1, 4, -16, -16], data: new Float32Array(1024) } as never, 500, ctx),
      { argument: "latents", says: ["non-negative integers"] },
    );
  } finally {
    await model.release();
  }
});

// --- F8: config values --------------------------------------------------------------------------

Deno.test("break10 F8: shapes config values checked at load", async () => {
  const cases: [string, (c: JsonObject) => void, RegExp | string, string[]][] = [
    [
      "beta_start = beta_end = 0.9999999",
      (c) => {
        c.schedule.beta_start = 0.9999999;
        c.schedule.beta_end = 0.9999999;
      },
      "config.json",
      ["schedule.beta_start", "schedule.beta_end", "alpha-bar"],
    ],
    [
      'unet_inputs.timestep = "sample"',
      (c) => {
        c.unet_inputs.timestep = "sample";
      },
      "config.json",
      ["three different graph inputs"],
    ],
    [
      "image_size 8192 against a 64-pixel decoder",
      (c) => {
        c.image_size = 8192;
      },
      "config.json image_size",
      ["8192", "axis 2 is 64"],
    ],
    [
      "name with escape sequences",
      (c) => {
        c.name = "\u001b[2J\u001b[31mPWNED";
      },
      "config.json",
      ["control characters", "\\u001b"],
    ],
  ];
  for (const [label, edit, argument, says] of cases) {
    const dir = await shapesCopy(edit);
    await corpus.rejects(label, () => loadShapesModel({ dir }), { argument, says });
    await Deno.remove(dir, { recursive: true });
  }
  await corpus.rejects(
    "scheduler_config beta_start = beta_end = 0.9999999",
    () => parseSchedulerConfig({ beta_start: 0.9999999, beta_end: 0.9999999 }),
    { argument: "scheduler_config.json", says: ["beta_start", "beta_end", "alpha-bar"] },
  );
  await corpus.works(
    "scheduler_config of SD 1.5 passes",
    () =>
      parseSchedulerConfig({
        beta_start: 0.00085,
        beta_end: 0.012,
        beta_schedule: "scaled_linear",
      }),
    (c) => assert.equal(c.betaEnd, 0.012),
  );
});

Deno.test("break10 F8: SD 1.5 tokenizer and model_index values checked at load", async () => {
  const cases: [string, (d: string) => Promise<void>, string | RegExp, string[]][] = [
    [
      "vocab id 4294967297 (wraps to 1 as int32)",
      (d) =>
        editJson(join(d, "tokenizer/vocab.json"), (v) => {
          v["a</w>"] = 4294967297;
        }),
      "vocab",
      ["4294967297", "2^31 - 1"],
    ],
    [
      "vocab id 1e308",
      (d) =>
        editJson(join(d, "tokenizer/vocab.json"), (v) => {
          v["a</w>"] = 1e308;
        }),
      "vocab",
      ["1e+308"],
    ],
    [
      'model_max_length "7"',
      (d) =>
        editJson(join(d, "tokenizer/tokenizer_config.json"), (v) => {
          v.model_max_length = "7";
        }),
      "tokenizer/tokenizer_config.json model_max_length",
      ['"7"'],
    ],
    [
      "bos_token {content: 5}",
      (d) =>
        editJson(join(d, "tokenizer/tokenizer_config.json"), (v) => {
          v.bos_token = { content: 5 };
        }),
      "tokenizer/tokenizer_config.json bos_token",
      ['{"content":5}'],
    ],
    [
      "model_index unet [null, null]",
      (d) =>
        editJson(join(d, "model_index.json"), (v) => {
          v.unet = [null, null];
        }),
      "model_index.json unet",
      ["absent"],
    ],
  ];
  for (const [label, edit, argument, says] of cases) {
    const dir = await hfCopy(edit);
    await corpus.rejects(label, () => loadSd15Model(dir, { imageSize: [64, 64] }), {
      argument,
      says,
    });
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("break10 F8: external-data offset and length checked by attnkit, naming the tensor", async () => {
  const data = new Uint8Array(32);
  for (
    const [name, says] of [
      ["b10_extdata_past_end", "offset 16 and length 32, past the end of its 32 bytes"],
      ["b10_extdata_bad_length", 'length "-1", not a byte count'],
    ] as const
  ) {
    const bytes = await fixture(`${name}.onnx`);
    await corpus.rejects(
      name,
      () => createSession(bytes, { source: name, externalData: [{ path: "w.bin", data }] }),
      { argument: name, says: ['tensor "weights"', says] },
    );
  }
  await corpus.works(
    "entries name the tensor",
    async () => externalDataEntries(await fixture("b10_extdata_past_end.onnx")),
    (e) =>
      assert.deepEqual(e, [{ tensor: "weights", location: "w.bin", offset: "16", length: "32" }]),
  );
});

corpus.close(60);
