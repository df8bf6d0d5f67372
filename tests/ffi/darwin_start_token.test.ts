// macOS start tokens (process start time from proc_pidinfo), checked on any OS
// against a fake libc that fills `struct proc_bsdinfo` the way macOS lays it
// out. No macOS machine runs this suite: what these tests pin down is the
// parsing and its refusals, which keep a layout mistake from ever producing a
// token that changes (a live holder judged stale).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  posixBinding,
  type ProcessInfoCall,
  type RawLibc,
  startTokenFromProcessInfo,
} from "../../ffi/posix.ts";
import {
  DARWIN_AARCH64,
  DARWIN_PROC_BSDINFO as INFO,
  DARWIN_X86_64,
  LINUX_X86_64,
} from "../../ffi/posix_tables.ts";
import { runtimeName } from "../helpers.ts";

const STARTED = 1_763_000_000; // 2025-11-13
const NOW_MS = (STARTED + 3600) * 1000;

/** A filled `proc_bsdinfo`: every other field holds noise, as a live process's would. */
function bsdInfo(pid: number, seconds: bigint, microseconds: bigint): DataView {
  const view = new DataView(new ArrayBuffer(INFO.size));
  for (let offset = 0; offset < INFO.size; offset += 4) view.setUint32(offset, 0x5a5a5a5a);
  view.setUint32(INFO.pidOffset, pid, true);
  view.setBigUint64(INFO.startSecondsOffset, seconds, true);
  view.setBigUint64(INFO.startMicrosecondsOffset, microseconds, true);
  return view;
}

test(`${runtimeName}: darwin: a filled proc_bsdinfo gives the start time as the token`, () => {
  const view = bsdInfo(4242, BigInt(STARTED), 7n);
  assert.equal(
    startTokenFromProcessInfo(INFO, view, INFO.size, 4242, NOW_MS),
    `mac:${STARTED}.000007`,
  );
});

test(`${runtimeName}: darwin: an answer that is not self-consistent gives no token`, () => {
  const good = () => bsdInfo(4242, BigInt(STARTED), 7n);
  const token = (view: DataView, written = INFO.size, pid = 4242) =>
    startTokenFromProcessInfo(INFO, view, written, pid, NOW_MS);
  assert.equal(token(good(), 0), undefined, "the call failed (0 bytes)");
  assert.equal(token(good(), INFO.size - 8), undefined, "a shorter struct: another layout");
  assert.equal(token(good(), INFO.size, 4243), undefined, "it names another process");
  assert.equal(token(bsdInfo(4242, 12n, 0n)), undefined, "a small count, not a time");
  assert.equal(
    token(bsdInfo(4242, BigInt(STARTED + 86_400 * 2), 0n)),
    undefined,
    "in the future",
  );
  assert.equal(token(bsdInfo(4242, BigInt(STARTED), 1_000_000n)), undefined, "not microseconds");
  assert.equal(token(bsdInfo(4242, 2n ** 63n, 0n)), undefined, "noise");
});

const unused = () => -1;
const fakeLibc: RawLibc = {
  open: unused,
  flock: unused,
  fstat: unused,
  lstat: unused,
  unlink: unused,
  close: unused,
  read: unused,
  dup: unused,
  dup2: unused,
  statfs: unused,
  geteuid: () => 501,
};

/** A `proc_pidinfo` binder whose call answers through `fill`. */
function fakeInfo(fill: (pid: number, buffer: Uint8Array) => number): () => ProcessInfoCall {
  return () => (pid, flavor, arg, buffer, size) => {
    assert.equal(flavor, 3, "PROC_PIDTBSDINFO");
    assert.equal(arg, 0);
    assert.equal(size, INFO.size);
    assert.equal(buffer.length, INFO.size);
    return fill(pid, buffer);
  };
}

for (const table of [DARWIN_X86_64, DARWIN_AARCH64]) {
  test(`${runtimeName}: darwin ${table.arch}: the binding reads start tokens through proc_pidinfo`, () => {
    const alive = new Map([[100, 11n], [200, 22n]]);
    const binding = posixBinding(
      "bun-ffi",
      table,
      fakeLibc,
      undefined,
      () => 3,
      fakeInfo((pid, buffer) => {
        const micro = alive.get(pid);
        if (micro === undefined) return 0; // ESRCH
        buffer.set(new Uint8Array(bsdInfo(pid, BigInt(STARTED), micro).buffer));
        return INFO.size;
      }),
    );
    assert.equal(binding.processStartTime?.(100), `mac:${STARTED}.000011`);
    assert.equal(binding.processStartTime?.(200), `mac:${STARTED}.000022`);
    assert.equal(binding.processStartTime?.(100), `mac:${STARTED}.000011`, "stable");
    assert.equal(binding.processStartTime?.(300), undefined, "no such process");
  });
}

test(`${runtimeName}: darwin: without proc_pidinfo, or on Linux, there is no binding token`, () => {
  const missing = () => {
    throw new Error("symbol not found: proc_pidinfo");
  };
  const darwin = posixBinding("node-koffi", DARWIN_AARCH64, fakeLibc, undefined, () => 0, missing);
  assert.equal(darwin.processStartTime, undefined);
  // Linux reads /proc instead.
  const linux = posixBinding(
    "node-koffi",
    LINUX_X86_64,
    fakeLibc,
    undefined,
    () => 0,
    fakeInfo(() => 0),
  );
  assert.equal(linux.processStartTime, undefined);
});
