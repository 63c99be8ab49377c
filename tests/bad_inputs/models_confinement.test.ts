/**
 * Bad-input corpus, model side (issue 10 part A): everything a model names stays inside its
 * root (F1, F2 and their kind). Crafted ONNX files come from make_model_fixtures.py; folders
 * are temp copies of weights/shapes and tests/fixtures/hf_tiny with one thing changed.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadShapesModel } from "../../lib/models/shapes.ts";
import { confineEntry, modelRoot, readOnnx } from "../../lib/models/root.ts";
import { loadSd15, resolveSd15Files } from "../../lib/models/sd15.ts";
import { createSession } from "../../lib/onnx/ort.ts";
import { AttnkitError } from "../../lib/errors.ts";
import { decodeModel, encodeModel } from "../../lib/onnx/proto.ts";
import { externalDataRefs } from "../../lib/onnx/external.ts";
import { serveDirectory } from "../models_support.ts";
import {
  Corpus,
  countingServer,
  editJson,
  fixture,
  hfCopy,
  nodeAvailable,
  shapesCopy,
} from "./models_support.ts";

const corpus = new Corpus("models_confinement");
const tokenizerKey = "config.json files.tokenizer";

// --- F2: config.json `files` entries, every spelling of "outside" --------------------------

const ESCAPES: [string, string, unknown, string][] = [
  ["F2 absolute path", "tokenizer", "/etc/passwd", "an absolute path"],
  ["F2 ../ chain", "unet", "../../../../../../etc/hostname", '".." segment'],
  ["file: URL", "tokenizer", "file:///etc/passwd", "scheme"],
  ["https URL", "text_encoder", "https://example.invalid/x.onnx", "scheme"],
  ["percent-encoded ..", "tokenizer", "%2e%2e/%2e%2e/etc/passwd", "percent-encoded"],
  ["double percent-encoded ..", "tokenizer", "%252e%252e/secret.json", "percent-encoded"],
  ["percent-encoded slash", "tokenizer", "..%2fsecret.json", "percent-encoded"],
  ["mixed case %2E%2e", "unet", "%2E%2e/unet.onnx", "percent-encoded"],
  ["inner ..", "tokenizer", "sub/../../secret.json", '".." segment'],
  ["backslash ..", "tokenizer", "..\\secret.json", "backslash"],
  ["drive letter", "unet", "C:/Windows/win.ini", "scheme, drive letter"],
  ["network path", "unet", "//evil.invalid/share/x.onnx", "absolute path"],
  ["NUL byte", "unet", "unet.onnx\u0000.txt", "control character"],
  ["dots-only segment", "unet", ".../unet.onnx", "dots and spaces"],
  ["Windows '.. ' segment", "unet", ".. /unet.onnx", "dots and spaces"],
  ["empty segment", "unet", "a//unet.onnx", "empty path segment"],
  ["malformed percent-encoding", "tokenizer", "%zz%2/x.json", "malformed percent"],
];

for (const [label, key, value, why] of ESCAPES) {
  Deno.test(`confinement: ${label} in files.${key}`, async () => {
    const dir = await shapesCopy((c) => (c.files[key] = value));
    await corpus.rejects(label, () => loadShapesModel({ dir }), {
      argument: `config.json files.${key}`,
      says: [why, dir],
    });
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("confinement: a non-string or empty entry names the key", async () => {
  for (const [label, value] of [["number as file name", 42], ["empty name", ""]] as const) {
    const dir = await shapesCopy((c) => (c.files.tokenizer = value));
    await corpus.rejects(label, () => loadShapesModel({ dir }), {
      argument: "config.json",
      says: ["files.tokenizer must be a non-empty string", JSON.stringify(value)],
    });
    await Deno.remove(dir, { recursive: true });
  }
  await corpus.rejects("confineEntry on a number", () => confineEntry(7, "files.unet", "/r/"), {
    argument: "files.unet",
    says: ["/r/", "7"],
  });
  await corpus.rejects(
    "confineEntry on an empty name",
    () => confineEntry("", "files.unet", "/r/"),
    {
      argument: "files.unet",
      says: ["empty name", "/r/"],
    },
  );
});

Deno.test("confinement: F2 an http entry makes no request", async () => {
  const server = countingServer();
  const dir = await shapesCopy((c) => (c.files.text_encoder = `${server.url}x.onnx`));
  await corpus.rejects("http entry", () => loadShapesModel({ dir }), {
    argument: "config.json files.text_encoder",
    says: ["scheme"],
  });
  assert.equal(server.hits(), 0, "a request was made");
  await server.close();
  await Deno.remove(dir, { recursive: true });
});

// --- links on disk ------------------------------------------------------------------------

Deno.test("confinement: a file link to outside the root is refused", async () => {
  const outside = await Deno.makeTempDir();
  await Deno.writeTextFile(join(outside, "secret.json"), '{"vocab":["a"],"max_length":2}');
  const dir = await shapesCopy((c) => (c.files.tokenizer = "tok.json"));
  await Deno.symlink(join(outside, "secret.json"), join(dir, "tok.json"));
  await corpus.rejects("file symlink out", () => loadShapesModel({ dir }), {
    argument: tokenizerKey,
    says: ["is a link to", join(outside, "secret.json"), dir],
  });
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(outside, { recursive: true });
});

Deno.test("confinement: a folder link to / is refused", async () => {
  const dir = await shapesCopy((c) => (c.files.tokenizer = "sys/etc/passwd"));
  await Deno.symlink("/", join(dir, "sys"));
  await corpus.rejects("dir symlink out", () => loadShapesModel({ dir }), {
    argument: tokenizerKey,
    says: ["is a link to", "/etc/passwd"],
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("confinement: a relative link that climbs out is refused", async () => {
  const parent = await Deno.makeTempDir();
  const dir = join(parent, "model");
  await Deno.mkdir(dir);
  await shapesCopy((c) => (c.files.unet = "u.onnx"), dir);
  await Deno.copyFile(join(dir, "unet.onnx"), join(parent, "outside.onnx"));
  await Deno.symlink("../outside.onnx", join(dir, "u.onnx"));
  await corpus.rejects("relative symlink out", () => loadShapesModel({ dir }), {
    argument: "config.json files.unet",
    says: ["is a link to", "outside.onnx"],
  });
  await Deno.remove(parent, { recursive: true });
});

Deno.test("confinement: links that stay inside the root, and a linked root, still work", async () => {
  const dir = await shapesCopy((c) => (c.files.tokenizer = "./alias/tok.json"));
  await Deno.mkdir(join(dir, "alias"));
  await Deno.symlink("../tokenizer.json", join(dir, "alias", "tok.json"));
  const root = modelRoot(dir);
  await corpus.works("inside symlink", () => root.local("./alias/tok.json", tokenizerKey), (p) => {
    assert.equal(p, join(Deno.realPathSync(dir), "tokenizer.json"));
  });
  const link = `${dir}-link`;
  await Deno.symlink(dir, link);
  await corpus.works("linked root", () => modelRoot(link).local("config.json", "config"), (p) => {
    assert.equal(p, join(Deno.realPathSync(dir), "config.json"));
  });
  await corpus.works(
    "missing file is undefined, not an error",
    () => root.local("nope.json", "x"),
    (p) => {
      assert.equal(p, undefined);
    },
  );
  await corpus.works("./ normalised", () => confineEntry("./a/./b.onnx", "x", "/r/"), (v) => {
    assert.equal(v, "a/b.onnx");
  });
  await Deno.remove(link);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("confinement: a directory named as a file is refused", async () => {
  const dir = await shapesCopy((c) => (c.files.tokenizer = "sub"));
  await Deno.mkdir(join(dir, "sub"));
  await corpus.rejects("directory entry", () => loadShapesModel({ dir }), {
    argument: tokenizerKey,
    says: ["not a regular file"],
  });
  await Deno.remove(dir, { recursive: true });
});

// --- F1: external data is handed over by the confined resolver, never looked up by ORT -----

/** Runs f1_probe.ts in a child process whose CWD holds secret.txt; throws what it reports. */
async function probe(mode: string, ep: string, dir: string, cwd: string): Promise<unknown> {
  const script = new URL("./f1_probe.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", script, mode, ep, dir],
    cwd,
    stdout: "piped",
    stderr: "null",
  }).output();
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  const r = JSON.parse(lines[lines.length - 1]);
  if (r.error) {
    if (r.error.name !== "AttnkitError") throw new Error(`${r.error.name}: ${r.error.message}`);
    throw new AttnkitError(r.error.argument, r.error.message.slice(r.error.argument.length + 2));
  }
  return r;
}

for (const ep of ["wasm", "node"] as const) {
  Deno.test(`confinement: F1 crafted decoder reading secret.txt from the CWD (${ep})`, async (t) => {
    if (ep === "node" && !(await nodeAvailable())) {
      await t.step({ name: "onnxruntime-node not installed", ignore: true, fn: () => {} });
      return;
    }
    const dir = await shapesCopy();
    await Deno.writeFile(join(dir, "vae_decoder.onnx"), await fixture("f1_evil_decoder.onnx"));
    const cwd = await Deno.makeTempDir();
    await Deno.writeTextFile(join(cwd, "secret.txt"), "TOP-SECRET-API-KEY-0123456789abcdef\n");
    await corpus.rejects(`F1 loadShapesModel ${ep}`, () => probe("load", ep, dir, cwd), {
      argument: /files\.vae_decoder.*external data/,
      says: ["secret.txt", "missing", dir],
    });
    // The same bytes straight to createSession, external data not supplied.
    await corpus.rejects(`F1 createSession ${ep}`, () => probe("create", ep, dir, cwd), {
      argument: "evil.onnx",
      says: ['"secret.txt"', "not supplied"],
    });
    // A location that differs from what was supplied is still refused.
    await corpus.rejects(`F1 wrong path supplied ${ep}`, () => probe("wrongpath", ep, dir, cwd), {
      argument: "evil.onnx",
      says: ['"secret.txt"'],
    });
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cwd, { recursive: true });
  });
}

Deno.test("confinement: F1 a supplied external file inside the root is what ORT reads", async () => {
  // The same decoder with secret.txt inside the model folder: allowed, and the bytes come from
  // the root's file (the resolver handed them over), not from the CWD's.
  const dir = await shapesCopy();
  await Deno.writeFile(join(dir, "vae_decoder.onnx"), await fixture("f1_evil_decoder.onnx"));
  await Deno.writeTextFile(join(dir, "secret.txt"), "model-folder-bytes-0123456789abc");
  const f = await readOnnx(modelRoot(dir), "vae_decoder.onnx", "decoder");
  await corpus.works("F1 root-local external data", () => f.externalData, (x) => {
    assert.deepEqual(x.map((e) => e.path), ["secret.txt"]);
    assert.equal(new TextDecoder().decode(x[0].data).slice(0, 10), "model-fold");
  });
  await Deno.remove(dir, { recursive: true });
});

const HIDDEN: [string, string, string][] = [
  ["function body Constant", "f1_function_external.onnx", "secret.txt"],
  ["sparse initializer values", "f1_sparse_external.onnx", "secret.txt"],
  ["If-branch subgraph Constant", "f1_subgraph_external.onnx", "../secret.txt"],
];
for (const [where, file, location] of HIDDEN) {
  Deno.test(`confinement: F1 external data hidden in a ${where}`, async () => {
    const bytes = await fixture(file);
    await corpus.works(`scan finds ${where}`, () => externalDataRefs(bytes, file), (refs) => {
      assert.deepEqual(refs, [location]);
    });
    await corpus.rejects(
      `createSession refuses ${where}`,
      () => createSession(bytes, { source: file }),
      {
        argument: file,
        says: [JSON.stringify(location), "not supplied"],
      },
    );
  });
}

// --- SD 1.5 layout: external-data locations, model_index components -----------------------

async function withUnetLocation(location: string): Promise<string> {
  return await hfCopy(async (dir) => {
    const path = join(dir, "unet", "model.onnx");
    const m = decodeModel(await Deno.readFile(path), path);
    for (const t of m.graph.initializer) {
      for (const e of t.externalData ?? []) if (e.key === "location") e.value = location;
    }
    await Deno.writeFile(path, encodeModel(m));
  });
}

const LOCATIONS: [string, string, string | RegExp][] = [
  ["external data ../", "../text_encoder/weights.pb", '".." segment'],
  ["external data absolute", "/etc/passwd", "absolute path"],
  ["external data URL", "http://127.0.0.1:9/w.pb", "scheme"],
  ["external data %2e%2e", "%2e%2e/text_encoder/weights.pb", "percent-encoded"],
];
for (const [label, location, why] of LOCATIONS) {
  Deno.test(`confinement: SD 1.5 ${label}`, async () => {
    const dir = await withUnetLocation(location);
    await corpus.rejects(label, () => resolveSd15Files(dir), {
      argument: /unet\/model\.onnx/,
      says: [why],
    });
    await Deno.remove(dir, { recursive: true });
  });
}

Deno.test("confinement: SD 1.5 external data that is a link out of the root", async () => {
  const outside = await Deno.makeTempDir();
  await Deno.writeFile(join(outside, "w.bin"), new Uint8Array(16432));
  const dir = await hfCopy(async (d) => {
    await Deno.remove(join(d, "unet", "model.onnx_data"));
    await Deno.symlink(join(outside, "w.bin"), join(d, "unet", "model.onnx_data"));
  });
  await corpus.rejects("external data symlink out", () => resolveSd15Files(dir), {
    argument: "unet/model.onnx_data",
    says: ["is a link to", outside],
  });
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(outside, { recursive: true });
});

Deno.test("confinement: SD 1.5 tokenizer file that is a link out of the root", async () => {
  const dir = await hfCopy(async (d) => {
    await Deno.remove(join(d, "tokenizer", "merges.txt"));
    await Deno.symlink("/etc/hostname", join(d, "tokenizer", "merges.txt"));
  });
  await corpus.rejects("tokenizer symlink out", () => resolveSd15Files(dir), {
    argument: "tokenizer/merges.txt",
    says: ["is a link to"],
  });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("confinement: model_index.json components name folders inside the root", async () => {
  const dir = await hfCopy((d) =>
    editJson(
      join(d, "model_index.json"),
      (v) => (v["../../etc"] = ["diffusers", "OnnxRuntimeModel"]),
    )
  );
  await corpus.rejects("component key ../../etc", () => resolveSd15Files(dir), {
    argument: "model_index.json ../../etc",
    says: ['".." segment'],
  });
  await Deno.remove(dir, { recursive: true });
});

// --- URL roots: entries stay under the prefix; credentials go only to its origin ----------

Deno.test("confinement: URL roots keep entries under the prefix", async () => {
  const root = modelRoot("http://127.0.0.1:1/org/repo/resolve/main");
  await corpus.works("URL root encodes names", () => root.url("unet/a b#c.onnx", "x").href, (h) => {
    assert.equal(h, "http://127.0.0.1:1/org/repo/resolve/main/unet/a%20b%23c.onnx");
  });
  await corpus.rejects("URL root ../", () => root.url("../../other/x", "unet"), {
    argument: "unet",
    says: ["http://127.0.0.1:1/org/repo/resolve/main/"],
  });
  await corpus.rejects("URL root other host", () => root.url("//evil.invalid/x", "unet"), {
    argument: "unet",
  });
  await corpus.rejects("root with another scheme", () => modelRoot("ftp://example.invalid/m/"), {
    argument: "dir",
    says: ["ftp:"],
  });
  await corpus.rejects("local() on a URL root", () => root.local("x", "x"), {
    says: ["not a local folder"],
  });
});

Deno.test("confinement: a remote manifest outside the root is refused before any request", async () => {
  const evil = countingServer();
  await corpus.rejects(
    "manifest on another host",
    () =>
      resolveSd15Files("http://127.0.0.1:1/models/sd/", {
        manifest: `${evil.url}manifest.json`,
        headers: { Authorization: "Bearer t" },
      }),
    { argument: "manifest", says: ["scheme"] },
  );
  assert.equal(evil.hits(), 0);
  await evil.close();
});

Deno.test("confinement: credentials go only to the root's origin (external data naming another host)", async () => {
  const evil = countingServer();
  const dir = await withUnetLocation(`${evil.url}w.pb`);
  const server = serveDirectory(dir);
  const cacheDir = await Deno.makeTempDir();
  await corpus.rejects(
    "remote model naming another host",
    () =>
      loadSd15(server.url, { cacheDir, headers: { Authorization: "Bearer t" }, progress: false }),
    { argument: /unet\/model\.onnx/, says: ["scheme"] },
  );
  assert.equal(evil.hits(), 0, "the other host was contacted");
  assert.ok(server.requests.length > 0);
  await server.close();
  await evil.close();
  await Deno.remove(dir, { recursive: true });
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("confinement: a shapes model served from a URL root loads; its entries stay under the prefix", async () => {
  const dir = await shapesCopy();
  const server = serveDirectory(dir);
  const m = await corpus.works(
    "URL-root shapes model",
    () => loadShapesModel({ dir: server.url }),
    (m) => {
      assert.equal(m.info.name, "attnkit-shapes");
    },
  );
  await m.release();
  await editJson(join(dir, "config.json"), (c) => (c.files.unet = "../unet.onnx"));
  const before = server.requests.length;
  await corpus.rejects("URL-root ../ entry", () => loadShapesModel({ dir: `${server.url}` }), {
    argument: "config.json files.unet",
    says: ['".." segment', server.url],
  });
  assert.ok(server.requests.slice(before).every((r) => !r.path.includes("..")));
  await server.close();
  await Deno.remove(dir, { recursive: true });
});

corpus.close(45);
