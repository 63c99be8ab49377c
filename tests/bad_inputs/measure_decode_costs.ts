/**
 * Measures the JS heap cost per item of what `lib/onnx/proto.ts` allocates while decoding, to
 * set its COST_* charges (issue 10 break test, F4: the charges must cover real costs, or a file
 * of unknown fields or `strings` entries decodes to 60× its size). Each line builds N items the
 * way the decoder does and prints heap growth per item.
 *
 * Run: deno run --v8-flags=--expose-gc tests/bad_inputs/measure_decode_costs.ts
 *
 * @module
 */
const N = 2_000_000;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const buf = new Uint8Array(N * 2);

function measure(label: string, build: () => unknown): void {
  gc();
  const before = Deno.memoryUsage().heapUsed;
  const keep = build();
  gc();
  const per = (Deno.memoryUsage().heapUsed - before) / N;
  console.log(`${label.padEnd(44)} ${per.toFixed(1)} bytes/item`);
  (globalThis as Record<string, unknown>).keep = keep; // keep it alive past the measurement
}

measure("unknown field / strings entry (subarray view)", () => {
  const out: Uint8Array[] = [];
  for (let i = 0; i < N; i++) out.push(buf.subarray(2 * i, 2 * i + 2));
  return out;
});
measure("number pushed to a growing array (dims, floats)", () => {
  const out: number[] = [];
  for (let i = 0; i < N; i++) out.push(i + 0.5);
  return out;
});
measure("bigint pushed to a growing array (int64_data)", () => {
  const out: bigint[] = [];
  for (let i = 0; i < N; i++) out.push(BigInt(i) << 40n);
  return out;
});
measure("empty NodeProto object", () => {
  const out: unknown[] = [];
  for (let i = 0; i < N; i++) out.push({ input: [], output: [], opType: "", attribute: [] });
  return out;
});
measure("ValueInfoProto / Dim object", () => {
  const out: unknown[] = [];
  for (let i = 0; i < N; i++) out.push({ name: "" });
  return out;
});
