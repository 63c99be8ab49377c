/**
 * Pure parts of the Hugging Face layout resolver: external-data locations read from a model's
 * tensors (initializers, Constant attributes, subgraphs), location safety, model_index entries.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import {
  checkLocation,
  declaresComponent,
  externalDataLocations,
  localFileGetter,
  modelInputs,
  SD15_HF_LAYOUT,
} from "../lib/models/hf_layout.ts";
import type { GraphProto, Model, TensorProto } from "../lib/onnx/types.ts";
import { HF_TINY } from "./models_support.ts";

function tensor(name: string, location?: string): TensorProto {
  const t: TensorProto = { name, dims: [2], dataType: 1 };
  if (location) {
    t.externalData = [
      { key: "location", value: location },
      { key: "offset", value: "0" },
      { key: "length", value: "8" },
    ];
    t.dataLocation = 1;
  } else t.rawData = new Uint8Array(8);
  return t;
}

function graph(init: TensorProto[], extra: Partial<GraphProto> = {}): GraphProto {
  return { name: "g", node: [], initializer: init, input: [], output: [], valueInfo: [], ...extra };
}

Deno.test("hf layout: external data locations", async (t) => {
  await t.step(
    "initializers, Constant attributes and subgraphs; distinct, first-seen order",
    () => {
      const sub = graph([tensor("s", "sub.bin")]);
      const model: Model = {
        irVersion: 8n,
        opsetImport: [{ domain: "", version: 17n }],
        graph: graph([
          tensor("w1", "model.onnx_data"),
          tensor("w2"),
          tensor("w3", "model.onnx_data"),
        ], {
          node: [
            {
              opType: "Constant",
              input: [],
              output: ["c"],
              attribute: [{ name: "value", type: 4, t: tensor("c", "weights.pb") }],
            },
            {
              opType: "If",
              input: ["b"],
              output: ["y"],
              attribute: [{ name: "then_branch", type: 5, g: sub }],
            },
          ],
        }),
      };
      assert.deepEqual(externalDataLocations(model), ["model.onnx_data", "weights.pb", "sub.bin"]);
    },
  );
  await t.step("a model with weights inside has none", () => {
    const model: Model = { irVersion: 8n, opsetImport: [], graph: graph([tensor("w")]) };
    assert.deepEqual(externalDataLocations(model), []);
  });
  await t.step("initializers listed as graph inputs are not model inputs", () => {
    const vi = (name: string) => ({
      name,
      type: { tensorType: { elemType: 7, shape: { dim: [{ dimParam: "batch" }] } } },
    });
    const model: Model = {
      irVersion: 8n,
      opsetImport: [],
      graph: graph([tensor("w")], { input: [vi("timestep"), vi("w")] }),
    };
    assert.deepEqual(modelInputs(model), [{ name: "timestep", type: "int64", shape: ["batch"] }]);
  });
});

Deno.test("hf layout: locations outside the model folder are refused", () => {
  for (const ok of ["model.onnx_data", "weights.pb", "sub/w.bin"]) {
    checkLocation(ok, "unet/model.onnx");
  }
  for (const bad of ["../secret", "/etc/passwd", "C:\\w.bin", "a/../../b", "a\\..\\b", ""]) {
    assert.throws(
      () => checkLocation(bad, "unet/model.onnx"),
      (e: unknown) => e instanceof AttnkitError && e.argument === "unet/model.onnx",
      bad,
    );
  }
});

Deno.test("hf layout: model_index entries and the local getter", async (t) => {
  await t.step("declared, declared absent, silent", () => {
    const index = { vae_encoder: [null, null], vae_decoder: ["diffusers", "OnnxRuntimeModel"] };
    assert.equal(declaresComponent(index, "vae_encoder"), false);
    assert.equal(declaresComponent(index, "vae_decoder"), true);
    assert.equal(declaresComponent(index, "safety_checker"), undefined);
  });
  await t.step("local getter finds fixture files and reports absent ones", async () => {
    const get = localFileGetter(HF_TINY);
    for (const e of SD15_HF_LAYOUT.filter((e) => e.required)) {
      assert.ok(await get(e.path, true), e.path);
    }
    assert.equal(await get("vae_encoder/model.onnx", false), undefined);
  });
});
