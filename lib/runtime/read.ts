/**
 * Reads a file given as a path or URL (file:, http:, https:), so the embedded weights load the
 * same way from a checkout and from a published package. Errors name the file.
 *
 * Not for files a model names: those resolve through a `ModelRoot` (`lib/models/root.ts`), which
 * keeps them inside the model's folder or URL prefix. This reader follows any path or URL.
 *
 * @module
 */
import { AttnkitError } from "../errors.ts";

/** Bytes of a file at a path or URL. */
export async function readBytes(where: string | URL): Promise<Uint8Array> {
  const url = where instanceof URL ? where : /^[a-z]+:/i.test(where) ? new URL(where) : null;
  try {
    if (url === null) return await Deno.readFile(where as string);
    if (url.protocol === "file:") return await Deno.readFile(url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    const msg = e instanceof Deno.errors.NotFound ? "file not found" : (e as Error).message;
    throw new AttnkitError(String(where), `could not read: ${msg}`);
  }
}

/** JSON of a file at a path or URL. */
export async function readJson<T>(where: string | URL): Promise<T> {
  const text = new TextDecoder().decode(await readBytes(where));
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new AttnkitError(String(where), `is not valid JSON: ${(e as Error).message}`);
  }
}
