/**
 * `mod.ts` must import from a script that lives outside the checkout, with no `deno.json` beside
 * it: every third-party specifier in the library is a full `npm:` specifier.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

Deno.test("mod.ts imports from a script in a directory outside the checkout", async () => {
  const dir = await Deno.makeTempDir({ prefix: "attnkit-outside-" });
  try {
    const modUrl = new URL("../mod.ts", import.meta.url).href;
    const script = join(dir, "use.ts");
    await Deno.writeTextFile(
      script,
      `import * as attnkit from ${JSON.stringify(modUrl)};\n` +
        `const t = attnkit.tensor([2, 2], [1, 2, 3, 4]);\n` +
        `console.log(JSON.stringify({ exports: Object.keys(attnkit).length, sum: t.data.reduce((a, b) => a + b, 0) }));\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", script],
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `the script failed:\n${stderr}`);
    const line = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!;
    const got = JSON.parse(line);
    assert.equal(got.sum, 10);
    assert.ok(got.exports > 0);
    assert.ok(!fileURLToPath(modUrl).startsWith(dir));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
