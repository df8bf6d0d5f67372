/**
 * A small system file (`/proc/...`) read through a kernel binding's own
 * `open`/`read`: what a Deno process whose file APIs are refused `/proc`
 * (Deno opens it only under `--allow-all`) can still read with FFI.
 *
 * @module
 */

import type { Binding } from "../ffi/types.ts";

/**
 * The text of `path`, at most `limit` bytes, read through `binding`;
 * `undefined` where the binding cannot read or the file cannot be opened.
 */
export function readThroughBinding(
  binding: Binding | undefined,
  path: string,
  limit: number,
): string | undefined {
  const read = binding?.read;
  if (binding === undefined || read === undefined) return undefined;
  const c = binding.constants;
  const fd = binding.open(binding.encodePath(path), c.O_RDONLY | c.O_CLOEXEC | c.O_NONBLOCK, 0);
  if (fd < 0) return undefined;
  try {
    const decoder = new TextDecoder();
    const chunk = new Uint8Array(Math.min(limit, 65536));
    let text = "";
    for (let total = 0; total < limit;) {
      const count = read.call(binding, fd, chunk);
      if (count <= 0) break;
      text += decoder.decode(chunk.subarray(0, count), { stream: true });
      total += count;
    }
    text += decoder.decode();
    return text === "" ? undefined : text;
  } finally {
    binding.close(fd);
  }
}
