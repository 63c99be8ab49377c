/**
 * Caption → token ids for the embedded model: lower-case words split on spaces, "," as its own
 * token, `<sot>` first, `<eot>` last, `<pad>` after. The training recipe reads ids made here, so
 * this is the model's tokenizer of record.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";
import { CLASSES, COLOURS, MAX_TOKENS, VOCAB } from "./world.ts";

const INDEX: ReadonlyMap<string, number> = new Map(VOCAB.map((w, i) => [w, i]));

/** Words of a caption as the tokenizer sees them. */
export function wordsOf(caption: string): string[] {
  return caption.toLowerCase().replace(/,/g, " , ").split(/\s+/).filter((w) => w.length > 0);
}

/** Token ids of a caption, padded to `MAX_TOKENS`. Unknown words and over-long captions throw. */
export function tokenIds(caption: string): Int32Array {
  const words = wordsOf(caption);
  const ids = new Int32Array(MAX_TOKENS); // <pad> = 0
  if (words.length + 2 > MAX_TOKENS) {
    throw new AttnkitError(
      "prompt",
      `${
        words.length + 2
      } tokens (with start and end) is more than the model's limit of ${MAX_TOKENS}`,
    );
  }
  ids[0] = INDEX.get("<sot>")!;
  words.forEach((w, i) => {
    const id = INDEX.get(w);
    if (id === undefined) {
      throw new AttnkitError(
        "prompt",
        `the word "${w}" is not in the shapes model's vocabulary; it knows the classes ` +
          `${CLASSES.join(", ")} (and their plurals), the colours ${COLOURS.join(", ")}, ` +
          `and the words ${VOCAB.slice(3, 13).join(" ")}`,
      );
    }
    ids[i + 1] = id;
  });
  ids[words.length + 1] = INDEX.get("<eot>")!;
  return ids;
}
