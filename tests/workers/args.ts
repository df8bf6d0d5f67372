// A worker's command-line arguments, in every runtime (Deno's process.argv
// would do too, but Deno.args needs no node: import).
export const args: string[] = (globalThis as { Deno?: { args: string[] } }).Deno?.args ??
  process.argv.slice(2);
