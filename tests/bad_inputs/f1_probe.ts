/**
 * Run by models_confinement.test.ts in a child process whose working directory holds
 * `secret.txt` (a chdir inside the test runner would move every parallel test's CWD): tries the
 * F1 crafted decoder one way and prints the outcome as JSON — the AttnkitError, or the bytes the
 * decoder painted into the image.
 *
 * deno run -A tests/bad_inputs/f1_probe.ts <load|create|wrongpath> <wasm|node> <model dir>
 *
 * @module
 */
import { loadShapesModel } from "../../lib/models/shapes.ts";
import { createSession, type ExecutionProvider } from "../../lib/onnx/ort.ts";
import { decodeLatents } from "../../lib/runtime/sample.ts";
import { tensor } from "../../lib/tensor.ts";
import { AttnkitError } from "../../lib/errors.ts";

const [mode, ep, dir] = Deno.args;
const eps = [ep as ExecutionProvider];
try {
  if (mode === "load") {
    const model = await loadShapesModel({ dir, session: { executionProviders: eps } });
    const img = await decodeLatents(model, tensor([1, 4, 16, 16]));
    await model.release();
    const red = img.data.subarray(64 * 64 - 32, 64 * 64);
    console.log(
      JSON.stringify({
        painted: new TextDecoder().decode(Uint8Array.from(red, (v) => Math.round(v * 255))),
      }),
    );
  } else {
    const bytes = await Deno.readFile(`${dir}/vae_decoder.onnx`);
    const externalData = mode === "wrongpath"
      ? [{ path: "./secret.txt", data: new Uint8Array(32) }]
      : undefined;
    await createSession(bytes, { executionProviders: eps, source: "evil.onnx", externalData });
    console.log(JSON.stringify({ created: true }));
  }
} catch (e) {
  console.log(JSON.stringify({
    error: {
      name: (e as Error).name,
      message: (e as Error).message,
      argument: e instanceof AttnkitError ? e.argument : undefined,
    },
  }));
}
