// deno-lint-ignore-file no-explicit-any no-var
// For tsc only (the npm build's bundled declarations, which name no Deno
// type): the Deno APIs that ffi/deno.ts and ffi/deno_native.ts call, typed
// loosely. Deno itself checks those files against its own types.
declare var Deno: any;
declare namespace Deno {
  type FileInfo = any;
  type FsFile = any;
}
