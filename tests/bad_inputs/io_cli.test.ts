/**
 * Bad-input corpus, command lines (issue 10 F10 `--seed ""`, F13): every parse error of the
 * examples and benchmarks is one `error: … (see --help)` line on stderr with exit code 2, given
 * before any model loads, and a failed run leaves no folder it made behind. The flag helpers are
 * also checked in-process.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseArgs } from "node:util";
import { join } from "node:path";
import {
  intArg,
  numArg,
  prepareOutput,
  removeCreatedOutputDirs,
  usageMessage,
} from "../../lib/cli.ts";
import { exists, throwsClearly, withTempDir } from "./io_support.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function run(script: string, args: string[], cwd = ROOT) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, script), ...args],
    cwd,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const dec = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: dec(out.stdout), stderr: dec(out.stderr) };
}

/** One `error:` line naming `what`, a pointer to --help, exit 2, nothing on stdout. */
function assertUsageError(r: { code: number; stdout: string; stderr: string }, what: RegExp): void {
  const lines = r.stderr.trim().split("\n");
  assert.equal(r.code, 2, r.stderr);
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], /\(see --help\)$/);
  assert.match(lines[0], what);
  assert.equal(r.stdout, "", "nothing ran (no model loaded)");
}

const CASES: [string, string[], RegExp][] = [
  ["examples/isac.ts", ["--frobnicate"], /unknown option --frobnicate/],
  ["examples/isac.ts", ["--seed", "-5"], /--seed: the value "-5" starts with "-"; write --seed=-5/],
  ["examples/isac.ts", ["--seed", ""], /--seed: must be an integer/],
  ["examples/isac.ts", ["--seed", "1e300"], /--seed: must be an integer/],
  ["examples/isac.ts", ["--seed", "9007199254740993"], /--seed/],
  [
    "examples/isac.ts",
    ["--guidance", "Infinity"],
    /--guidance: must be a finite number ≥ 1, got "Infinity"/,
  ],
  ["examples/isac.ts", ["--guidance", "NaN"], /--guidance/],
  ["examples/isac.ts", ["--guidance", ""], /--guidance/],
  ["examples/isac.ts", ["--steps", "2.5"], /--steps: must be an integer ≥ 1/],
  ["examples/isac.ts", ["--steps", "0x10"], /--steps/],
  ["examples/isac.ts", ["--rows"], /--rows: needs a value/],
  ["examples/isac.ts", ["extra"], /unexpected argument "extra"/],
  ["examples/isac.ts", ["--help=yes"], /--help: takes no value/],
  ["examples/isac.ts", ["--eta", "-Infinity"], /--eta/],
  ["examples/isac.ts", ["--ep", "cuda"], /--ep: must be auto, node, wasm or webgpu/],
  ["examples/isac_optimise.ts", ["--frobnicate"], /unknown option --frobnicate/],
  ["examples/isac_optimise.ts", ["--guidance", "Infinity"], /--guidance/],
  ["examples/isac_optimise.ts", ["--seed", ""], /--seed/],
  ["bench/accuracy.ts", ["--frobnicate"], /unknown option/],
  ["bench/accuracy.ts", ["--guidance", "Infinity"], /--guidance/],
  ["bench/accuracy.ts", ["--max-minutes", "Infinity"], /--max-minutes/],
  ["bench/model_quality.ts", ["--guidance", "1e999"], /--guidance/],
  ["bench/detector.ts", ["--scenes", "-3"], /--scenes/],
  ["bench/gradients.ts", ["--repeats", "abc"], /--repeats/],
  ["bench/kernels.ts", ["--frobnicate"], /unknown option/],
];
for (const [script, args, what] of CASES) {
  Deno.test(`io_cli F13: ${script} ${args.map((a) => JSON.stringify(a)).join(" ")} → one error line, exit 2`, async () => {
    assertUsageError(await run(script, args), what);
  });
}

Deno.test("io_cli F13: a failed run leaves no folder it made (bad --ep after --out made the folders)", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "newdir", "a", "b.png");
    assertUsageError(await run("examples/isac.ts", ["--out", out, "--ep", "cuda"]), /--ep/);
    assert.equal(await exists(join(dir, "newdir")), false);
  });
});

Deno.test("io_cli F13: --steps 2000 fails after the model loads; the new folders are removed", async () => {
  await withTempDir(async (dir) => {
    const out = join(dir, "newdir", "a", "b.png");
    const r = await run("examples/isac.ts", [
      "--out",
      out,
      "--steps",
      "2000",
      "--rows",
      "1",
      "--candidates",
      "2",
      "--ep",
      "wasm",
    ]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr.trim().split("\n").at(-1)!, /^error: .*steps.*\(see --help\)$/);
    assert.equal(await exists(join(dir, "newdir")), false);
  });
});

// ---------------------------------------------------------------- the helpers in-process

for (
  const v of ["", " ", "1e3", "0x10", "2.5", "Infinity", "NaN", "9007199254740993", "-1", "3 cats"]
) {
  Deno.test(`io_cli: intArg(${JSON.stringify(v)}) → error naming the flag`, () => {
    throwsClearly(() => intArg("steps", v, 50, 0), "--steps", /must be an integer/);
  });
}
Deno.test("io_cli: intArg reads plain integers, signs and a safe-integer seed range", () => {
  assert.equal(intArg("steps", "20", 50, 1), 20);
  assert.equal(intArg("seed", "-5", 0, Number.MIN_SAFE_INTEGER), -5);
  assert.equal(intArg("seed", "+7", 0, Number.MIN_SAFE_INTEGER), 7);
  assert.equal(intArg("steps", undefined, 50, 1), 50);
  throwsClearly(
    () => intArg("seed", "1e300", 0, Number.MIN_SAFE_INTEGER),
    "--seed",
    /safe integer/,
  );
});
for (const v of ["", "Infinity", "-Infinity", "NaN", "1e999", "0x10", "abc", "0.5"]) {
  Deno.test(`io_cli: numArg(${JSON.stringify(v)}) with min 1 → error naming the flag`, () => {
    throwsClearly(() => numArg("guidance", v, 5, { min: 1 }), "--guidance", /finite number/);
  });
}
Deno.test("io_cli: numArg reads decimals and exponents", () => {
  assert.equal(numArg("guidance", "7.5", 5, { min: 1 }), 7.5);
  assert.equal(numArg("eta", "1e-2", 0, { min: 0 }), 0.01);
  assert.equal(numArg("eta", ".5", 0, { min: 0 }), 0.5);
  throwsClearly(() => numArg("lr", "0", 1, { min: 0, minExclusive: true }), "--lr", /> 0/);
});
Deno.test("io_cli: usageMessage turns each parseArgs error into one sentence", () => {
  const opts = {
    seed: { type: "string" as const },
    help: { type: "boolean" as const, short: "h" },
  };
  const msg = (args: string[]) => {
    try {
      parseArgs({ args, options: opts });
    } catch (e) {
      return usageMessage(e, args);
    }
  };
  assert.equal(msg(["--frobnicate"]), "unknown option --frobnicate");
  assert.equal(msg(["--seed", "-5"]), '--seed: the value "-5" starts with "-"; write --seed=-5');
  assert.equal(msg(["--seed"]), "--seed: needs a value");
  assert.equal(msg(["x"]), 'unexpected argument "x"');
  assert.equal(msg(["--help=1"]), "--help: takes no value");
  assert.equal(usageMessage(new Error("other")), undefined);
});
Deno.test("io_cli: prepareOutput's folders are removed by removeCreatedOutputDirs when empty", async () => {
  await withTempDir(async (dir) => {
    await prepareOutput(join(dir, "x", "y", "z.png"));
    assert.ok(await exists(join(dir, "x", "y")));
    assert.equal(await exists(join(dir, "x", "y", "z.png")), false);
    await removeCreatedOutputDirs();
    assert.equal(await exists(join(dir, "x")), false);
    await prepareOutput(join(dir, "k", "z.png"));
    await Deno.writeTextFile(join(dir, "k", "z.png"), "written");
    await removeCreatedOutputDirs();
    assert.ok(await exists(join(dir, "k", "z.png")), "a folder with output in it is kept");
  });
});
Deno.test("io_cli: prepareOutput with an empty path or under a file → error naming --out", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(prepareOutput(""), /--out/);
    await Deno.writeTextFile(join(dir, "f"), "");
    await assert.rejects(prepareOutput(join(dir, "f", "a", "b.png")), /--out: cannot create/);
  });
});
