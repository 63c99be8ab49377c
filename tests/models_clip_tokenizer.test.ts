/**
 * CLIP BPE tokenizer on the hand-made vocabulary of tests/fixtures/hf_tiny/tokenizer.
 *
 * That vocabulary has CLIP's structure (see tests/fixtures/make_hf_tiny.py):
 *   ids 0..255    one token per byte, in bytes-to-unicode order: bytes 33..126 first, so an ASCII
 *                 letter or digit has id = code - 33 (a=64, b=65, c=66, f=69, s=82, 2=17, 4=19),
 *                 then bytes 161..172 (ids 94..105), 174..255 (ids 106..187), then the rest
 *                 0..32, 127..160, 173 (ids 188..255);
 *   ids 256..511  the same tokens + "</w>" (id + 256);
 *   ids 512..528  one token per merge, id = 512 + rank:
 *                 0 "r e"=re 512, 1 "e d</w>"=ed</w> 513, 2 "c u"=cu 514, 3 "b e</w>"=be</w> 515,
 *                 4 "cu be</w>"=cube</w> 516, 5 "c a"=ca 517, 6 "ca t"=cat 518,
 *                 7 "re d</w>"=red</w> 519, 8 "a n"=an 520, 9 "an d</w>"=and</w> 521,
 *                 10 "ca t</w>"=cat</w> 522, …, 16 "' s</w>"='s</w> 528;
 *   529 <|startoftext|>, 530 <|endoftext|> (also pad and unk).
 * Each expected id list below is worked out by hand from those merges.
 *
 * @module
 */
import assert from "node:assert/strict";
import { AttnkitError } from "../lib/errors.ts";
import {
  bpeMerge,
  bytesToUnicode,
  type ClipTokenizer,
  createClipTokenizer,
  loadClipTokenizer,
  parseMerges,
} from "../lib/models/clip_tokenizer.ts";

const DIR = new URL("./fixtures/hf_tiny/tokenizer/", import.meta.url);
const path = (name: string): string => new URL(name, DIR).pathname;

async function fixtureTokenizer(): Promise<ClipTokenizer> {
  return await loadClipTokenizer({
    vocab: path("vocab.json"),
    merges: path("merges.txt"),
    tokenizerConfig: path("tokenizer_config.json"),
    specialTokensMap: path("special_tokens_map.json"),
  });
}

const BOS = 529;
const EOS = 530;

/** Spans as [start, end] pairs, for compact comparison. */
function spans(tok: ClipTokenizer, text: string): [number, number][] {
  return tok.tokenize(text).pieces.map((p) => [p.start, p.end]);
}

Deno.test("clip tokenizer: bytes-to-unicode table", async (t) => {
  const table = bytesToUnicode();
  await t.step("GPT-2's known images: space → Ġ (U+0120), newline → Ċ (U+010A), 'a' → 'a'", () => {
    assert.equal(table[0x20], "\u0120");
    assert.equal(table[0x0a], "\u010a");
    assert.equal(table[0x61], "a");
    assert.equal(new Set(table).size, 256);
  });
  await t.step("agrees with the Python-written vocab's first 256 tokens", async () => {
    const vocab = JSON.parse(await Deno.readTextFile(path("vocab.json")));
    const byId = Object.entries(vocab).sort((a, b) => (a[1] as number) - (b[1] as number));
    const order = [
      ...Array.from({ length: 94 }, (_, i) => 33 + i),
      ...Array.from({ length: 12 }, (_, i) => 161 + i),
      ...Array.from({ length: 82 }, (_, i) => 174 + i),
    ];
    for (let b = 0; b < 256; b++) if (!order.includes(b)) order.push(b);
    for (let i = 0; i < 256; i++) assert.equal(byId[i][0], table[order[i]], `id ${i}`);
  });
});

Deno.test("clip tokenizer: merges by rank", async (t) => {
  const merges = parseMerges(await Deno.readTextFile(path("merges.txt")));
  const ranks = new Map(merges.map(([a, b], r) => [a + " " + b, r]));
  await t.step("header skipped, 17 merges in order", () => {
    assert.equal(merges.length, 17);
    assert.deepEqual(merges[0], ["r", "e"]);
    assert.deepEqual(merges[16], ["'", "s</w>"]);
  });
  await t.step("red: (r,e) rank 0 beats (e,d</w>) rank 1, then re+d</w> rank 7", () => {
    assert.deepEqual(bpeMerge(["r", "e", "d</w>"], ranks), ["red</w>"]);
  });
  await t.step("bed: only (e,d</w>) applies, leaving b + ed</w>", () => {
    assert.deepEqual(bpeMerge(["b", "e", "d</w>"], ranks), ["b", "ed</w>"]);
  });
  await t.step("banana: both (a,n) occurrences merge in one pass", () => {
    assert.deepEqual(bpeMerge(["b", "a", "n", "a", "n", "a</w>"], ranks), [
      "b",
      "an",
      "an",
      "a</w>",
    ]);
  });
});

Deno.test("clip tokenizer: ids and spans on the hand vocabulary", async (t) => {
  const tok = await fixtureTokenizer();
  await t.step("config: max length 77, pad = <|endoftext|>, bos from an AddedToken object", () => {
    assert.equal(tok.maxLength, 77);
    assert.equal(tok.bosId, BOS);
    assert.equal(tok.eosId, EOS);
    assert.equal(tok.padId, EOS);
    assert.equal(tok.vocabSize, 531);
  });
  await t.step(
    "'a red cube': a</w> 320, red</w> 519, cube</w> 516 (c u → cu, b e</w>, cu be</w>)",
    () => {
      const r = tok.tokenize("a red cube");
      assert.deepEqual(r.ids, [BOS, 320, 519, 516, EOS]);
      assert.deepEqual(r.pieces.map((p) => p.text), [
        "<|startoftext|>",
        "a",
        "red",
        "cube",
        "<|endoftext|>",
      ]);
      assert.deepEqual(spans(tok, "a red cube"), [[0, 0], [0, 1], [2, 5], [6, 10], [10, 10]]);
    },
  );
  await t.step("multi-token words: cats → cat 518 + s</w> 338; cat → cat</w> 522", () => {
    const r = tok.tokenize("cats cat");
    assert.deepEqual(r.ids, [BOS, 518, 338, 522, EOS]);
    assert.deepEqual(spans(tok, "cats cat"), [[0, 0], [0, 3], [3, 4], [5, 8], [8, 8]]);
  });
  await t.step("bed → b 65 + ed</w> 513; banana → b an an a</w>", () => {
    assert.deepEqual(tok.tokenize("bed banana").ids, [BOS, 65, 513, 65, 520, 520, 320, EOS]);
  });
  await t.step("upper case, repeated spaces, tab, punctuation run", () => {
    const text = "A  RED\tCube!!";
    // "!!" is one regex match: ! (0) + !</w> (256), no merge joins them.
    assert.deepEqual(tok.tokenize(text).ids, [BOS, 320, 519, 516, 0, 256, EOS]);
    assert.deepEqual(spans(tok, text), [
      [0, 0],
      [0, 1],
      [3, 6],
      [7, 11],
      [11, 12],
      [12, 13],
      [13, 13],
    ]);
    assert.deepEqual(tok.tokenize("  a red cube ").ids, tok.tokenize("a red cube").ids);
  });
  await t.step("digits are single tokens: 4</w> 275, 2</w> 273", () => {
    assert.deepEqual(tok.tokenize("42 cats").ids, [BOS, 275, 273, 518, 338, EOS]);
    assert.deepEqual(spans(tok, "42 cats").slice(1, 3), [[0, 1], [1, 2]]);
  });
  await t.step("contraction: cat's → cat</w> 522 + 's</w> 528 (' s</w> rank 16)", () => {
    assert.deepEqual(tok.tokenize("cat's").ids, [BOS, 522, 528, EOS]);
    assert.deepEqual(spans(tok, "cat's").slice(1, 3), [[0, 3], [3, 5]]);
  });
  await t.step("non-ASCII: café → ca 517, f 69, Ã 127, ©</w> 358 (é = C3 A9)", () => {
    // C3 = 195 → id 106 + (195 - 174) = 127; A9 = 169 → 94 + (169 - 161) = 102, +256 = 358.
    const r = tok.tokenize("café");
    assert.deepEqual(r.ids, [BOS, 517, 69, 127, 358, EOS]);
    // Both halves of é's bytes point at é.
    assert.deepEqual(spans(tok, "café").slice(1, 5), [[0, 2], [2, 3], [3, 4], [3, 4]]);
    assert.deepEqual(tok.tokenize("CAFÉ").ids, r.ids);
    // Decomposed e + U+0301 is NFC-composed first; both tokens span the two code units.
    assert.deepEqual(tok.tokenize("cafe\u0301").ids, r.ids);
    assert.deepEqual(spans(tok, "cafe\u0301").slice(3, 5), [[3, 5], [3, 5]]);
  });
  await t.step("emoji: F0 9F 90 B1 → 172, 253, 238, 365; span covers the surrogate pair", () => {
    // F0 = 240 → 106 + 66 = 172; 9F = 159 → 188 + 33 + (159 - 127) = 253;
    // 90 = 144 → 221 + 17 = 238; B1 = 177 → 106 + 3 = 109, +256 = 365.
    assert.deepEqual(tok.tokenize("🐱").ids, [BOS, 172, 253, 238, 365, EOS]);
    assert.deepEqual(spans(tok, "a 🐱")[2], [2, 4]);
  });
  await t.step("special token text is kept whole", () => {
    assert.deepEqual(tok.tokenize("a<|endoftext|>").ids, [BOS, 320, EOS, EOS]);
  });
  await t.step("empty and blank prompts", () => {
    assert.deepEqual(tok.tokenize("").ids, [BOS, EOS]);
    assert.deepEqual(tok.tokenize(" \n\t ").ids, [BOS, EOS]);
  });
  await t.step("encode pads to 77 with the pad id; decode inverts", () => {
    const ids = tok.encode("a red cube");
    assert.equal(ids.length, 77);
    assert.deepEqual([...ids.slice(0, 6)], [BOS, 320, 519, 516, EOS, EOS]);
    assert.ok(ids.slice(4).every((v) => v === EOS));
    assert.equal(tok.decode([...ids]), "a red cube");
    assert.equal(tok.decode([518, 338, 65, 513]), "cats bed");
  });
});

Deno.test("clip tokenizer: length limit, truncation, padding token, unknown pieces", async (t) => {
  const vocab = JSON.parse(await Deno.readTextFile(path("vocab.json")));
  const merges = await Deno.readTextFile(path("merges.txt"));
  await t.step("76 words = 78 tokens: AttnkitError naming prompt with 78 and 77", () => {
    const tok = createClipTokenizer(vocab, merges);
    const long = Array(76).fill("a").join(" ");
    assert.throws(
      () => tok.encode(long),
      (e: unknown) =>
        e instanceof AttnkitError && e.argument === "prompt" && /78 tokens/.test(e.message) &&
        /limit of 77/.test(e.message),
    );
    assert.equal(tok.tokenize(Array(75).fill("a").join(" ")).ids.length, 77);
  });
  await t.step("truncate keeps bos, the first 75 tokens and eos", () => {
    const tok = createClipTokenizer(vocab, merges, { truncate: true });
    const r = tok.tokenize(Array(80).fill("red").join(" "));
    assert.equal(r.ids.length, 77);
    assert.equal(r.pieces.length, 77);
    assert.equal(r.ids[0], BOS);
    assert.equal(r.ids[76], EOS);
    assert.ok(r.ids.slice(1, 76).every((v) => v === 519));
    assert.deepEqual([r.pieces[75].start, r.pieces[75].end], [74 * 4, 74 * 4 + 3]);
  });
  await t.step("SD 2.x style pad token '!' (id 0) and a shorter max length", () => {
    const tok = createClipTokenizer(vocab, merges, { padToken: "!", maxLength: 8 });
    assert.deepEqual([...tok.encode("a red")], [BOS, 320, 519, EOS, 0, 0, 0, 0]);
  });
  await t.step("pieces missing from the vocabulary map to the unk token", () => {
    const tiny = { "<|startoftext|>": 0, "<|endoftext|>": 1, "h": 2, "i</w>": 3 };
    const tok = createClipTokenizer(tiny, "#version: 0.2\n");
    assert.deepEqual(tok.tokenize("hi").ids, [0, 2, 3, 1]);
    assert.deepEqual(tok.tokenize("ho").ids, [0, 2, 1, 1]);
  });
  await t.step("a pad token missing from the vocabulary names padToken", () => {
    assert.throws(
      () => createClipTokenizer(vocab, merges, { padToken: "<pad>" }),
      (e: unknown) => e instanceof AttnkitError && e.argument === "padToken",
    );
  });
  await t.step("malformed merges line names merges", () => {
    assert.throws(
      () => createClipTokenizer(vocab, "#version: 0.2\na b c\n"),
      (e: unknown) => e instanceof AttnkitError && e.argument === "merges",
    );
  });
});

/** A CLIP `tokenizer.json` (the fast-tokenizer form of the same vocab and merges). */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[]): unknown {
  return {
    version: "1.0",
    added_tokens: [BOS, EOS].map((id) => ({
      id,
      content: id === BOS ? "<|startoftext|>" : "<|endoftext|>",
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "NFC" },
        { type: "Replace", pattern: { Regex: "\\s+" }, content: " " },
        { type: "Lowercase" },
      ],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        {
          type: "Split",
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: "Removed",
          invert: true,
        },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "RobertaProcessing",
      sep: ["<|endoftext|>", EOS],
      cls: ["<|startoftext|>", BOS],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<|endoftext|>",
      continuing_subword_prefix: "",
      end_of_word_suffix: "</w>",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

Deno.test("clip tokenizer: same ids as Hugging Face tokenizers.js on 1500 random prompts", async (t) => {
  const { Tokenizer } = await import("npm:@huggingface/tokenizers@0.2.0");
  const vocab = JSON.parse(await Deno.readTextFile(path("vocab.json")));
  const mergesText = await Deno.readTextFile(path("merges.txt"));
  const merges = mergesText.split("\n").slice(1).filter((l) => l.trim() !== "");
  const reference = new Tokenizer(clipTokenizerJson(vocab, merges) as never, {
    model_max_length: 77,
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
    pad_token: "<|endoftext|>",
    unk_token: "<|endoftext|>",
  } as never);
  const tok = createClipTokenizer(vocab, mergesText, { maxLength: 1000 });
  const words = [
    "a",
    "red",
    "cube",
    "cats",
    "cat's",
    "bed",
    "banana",
    "Blue",
    "DOG",
    "and",
    "42",
    "!!",
    "?",
    ",",
    "café",
    "naïve",
    "Ελληνικά",
    "ΟΔΟΣ",
    "ΣΑΣ",
    "日本語",
    "🐱",
    "e\u0301",
    "'ll",
    "don't",
    " ",
    "  ",
    "\t",
    "\n",
    "x-y",
    "3.14",
    "<|endoftext|>",
    "İstanbul",
    "straße",
    "Ǆ",
    "ﬁ",
    "١٢",
    "½",
    "(a)",
    "...",
  ];
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const prompts: string[] = [];
  for (let k = 0; k < 1500; k++) {
    let s = "";
    const n = 1 + Math.floor(rnd() * 8);
    for (let i = 0; i < n; i++) {
      s += words[Math.floor(rnd() * words.length)] + (rnd() < 0.6 ? " " : "");
    }
    prompts.push(s);
  }
  await t.step("ids agree", () => {
    for (const s of prompts) {
      assert.deepEqual(tok.tokenize(s).ids, reference.encode(s).ids, JSON.stringify(s));
    }
  });
  await t.step(
    "spans: ordered, in bounds, and each whole-character token's span reads as it",
    () => {
      const fold = (s: string): string => s.normalize("NFC").toLowerCase().replace(/ς/g, "σ");
      for (const s of prompts) {
        const { pieces } = tok.tokenize(s);
        let last = 0;
        for (const p of pieces.slice(1, -1)) {
          assert.ok(p.start >= last && p.start < p.end && p.end <= s.length, JSON.stringify(s));
          last = p.start;
          if (!p.text.includes("\uFFFD")) {
            assert.ok(fold(s.slice(p.start, p.end)).includes(fold(p.text)), JSON.stringify(s));
          }
        }
      }
    },
  );
});
