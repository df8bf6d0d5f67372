// The single places that turn things into error codes: file kinds, thrown
// runtime errors, backend requests.
import { test } from "node:test";
import assert from "node:assert/strict";
import { FileKind } from "../ffi/types.ts";
import { thrownErrnoName } from "../ffi/thrown.ts";
import { fileKindError, LockError } from "../src/errors.ts";
import { backendRequestProblem } from "../src/options.ts";
import { runtimeName } from "./helpers.ts";

test(`${runtimeName}: errors: a lock path that is not a regular file has one error per kind`, () => {
  assert.equal(fileKindError(FileKind.FILE, "/x"), undefined);
  assert.equal(
    fileKindError(FileKind.DIRECTORY, "/x", true),
    undefined,
    "where directories may be",
  );
  const cases: [FileKind, string, RegExp][] = [
    [FileKind.DIRECTORY, "EISDIR", /is a directory/],
    [FileKind.SYMLINK, "ELOOP", /symbolic link/],
    [FileKind.OTHER, "EINVAL", /fifo, socket or device/],
  ];
  for (const [kind, code, message] of cases) {
    const error = fileKindError(kind, "/x/y.lock");
    assert.ok(error instanceof LockError);
    assert.equal(error.code, code);
    assert.equal(error.path, "/x/y.lock");
    assert.match(error.message, message);
  }
});

test(`${runtimeName}: errors: a thrown runtime error is named by its errno`, () => {
  const withCode = (code: string) => Object.assign(new Error("x"), { code });
  const named = (name: string) => Object.assign(new Error("x"), { name });
  assert.equal(thrownErrnoName(withCode("ENOENT")), "ENOENT");
  assert.equal(thrownErrnoName(withCode("EAGAIN")), "EWOULDBLOCK");
  assert.equal(thrownErrnoName(named("NotCapable")), "EACCES", "a missing Deno permission");
  assert.equal(thrownErrnoName(named("PermissionDenied")), "EACCES");
  assert.equal(thrownErrnoName(named("NotFound")), "ENOENT");
  assert.equal(thrownErrnoName(named("IsADirectory")), "EISDIR");
  assert.equal(thrownErrnoName(withCode("ERR_INVALID_ARG_TYPE")), "EIO", "not an errno");
  assert.equal(thrownErrnoName(new Error("x")), "EIO");
  assert.equal(thrownErrnoName(undefined), "EIO");
  // Deno's plain Error for an errno it has no class for: named by the OS's table.
  const noLocks = new Error("No locks available (os error 37)");
  const linux = (errno: number) => errno === 37 ? "ENOLCK" : `E${errno}`;
  assert.equal(thrownErrnoName(noLocks, linux), "ENOLCK");
  assert.equal(thrownErrnoName(new Error("Odd (os error 99)"), linux), "EIO", "unnamed");
  assert.equal(thrownErrnoName(noLocks), "EIO", "no table");
});

test(`${runtimeName}: errors: backend requests are checked in one place`, () => {
  for (const ok of ["auto", "ffi", "native", "pidfile"]) {
    assert.equal(backendRequestProblem(ok), undefined);
  }
  assert.equal(
    backendRequestProblem("magic"),
    "must be one of auto, ffi, native, pidfile, got 'magic'",
  );
  assert.match(backendRequestProblem(3) ?? "", /got '3'/);
});
