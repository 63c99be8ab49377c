/**
 * The examples run as users run them: each, with no arguments, from a fresh working directory
 * (outside the checkout), prints what it found and writes its PNG (if it makes one); nothing else
 * is written there, and the library writes nothing to stderr.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const EXAMPLES: [string, RegExp[]][] = [
  ["compose_ae_euler.ts", [/^base: /m, /^A&E: /m]],
  ["compose_select_optimise.ts", [/^selection scores \[/m]],
  ["compose_mifo_isac.ts", [/^base: /m, /^boxes \+ ISAC: /m]],
  ["mifo_boxes.ts", [/^base: /m, /^boxes: /m]],
  ["load_sd15.ts", [/^sd15:.*latent 4,8,8/m, /^ISAC scores \[/m]],
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
      const written = [...Deno.readDirSync(cwd)].map((e) => e.name);
      if (/^wrote /m.test(stdout)) {
        const png = join(cwd, "out", file.replace(/\.ts$/, ".png"));
        const bytes = await Deno.readFile(png);
        assert.deepEqual([...bytes.subarray(1, 4)], [0x50, 0x4e, 0x47]); // "PNG"
        assert.deepEqual(written, ["out"]);
      } else {
        assert.deepEqual(written, []);
      }
      assert.equal(stderr.trim(), "", "the library wrote to stderr unasked");
    } finally {
      await Deno.remove(cwd, { recursive: true });
    }
  });
}
