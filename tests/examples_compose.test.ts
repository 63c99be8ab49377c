/**
 * The README's three compositions run as users run them: each example, with no arguments, from a
 * fresh working directory (outside the checkout), prints the detector's verdicts and writes its
 * PNG; nothing else is written there.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const EXAMPLES: [string, RegExp[]][] = [
  ["compose_ae_euler.ts", [/^base: /m, /^A&E: /m]],
  ["compose_select_optimise.ts", [/^selection scores \[/m]],
  ["compose_mifo_isac.ts", [/^base: /m, /^boxes \+ ISAC: /m]],
];

for (const [file, expect] of EXAMPLES) {
  Deno.test(`examples/${file} runs with no arguments and writes its PNG`, async () => {
    const cwd = await Deno.makeTempDir({ prefix: "attnkit-example-" });
    try {
      const script = new URL(`../examples/${file}`, import.meta.url).pathname;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", script],
        cwd,
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `exit ${out.code}\n${stderr}`);
      for (const re of expect) assert.match(stdout, re);
      const png = join(cwd, "out", file.replace(/\.ts$/, ".png"));
      const bytes = await Deno.readFile(png);
      assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
      assert.deepEqual([...Deno.readDirSync(cwd)].map((e) => e.name), ["out"]);
      assert.equal(stderr.trim(), "", "the library wrote to stderr unasked");
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  });
}
