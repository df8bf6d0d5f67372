// The Windows binding's translation layer, shared by the Deno, Bun and Node
// bindings, checked on any OS against a fake kernel32 that records its calls.
// (Real kernel32 runs in the Wine stage of `npm test`, through koffi.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { encodeWidePath, longPath, type RawKernel32, windowsBinding } from "../../ffi/windows.ts";
import { LAYOUT, WIN32, WINDOWS_CONSTANTS as C } from "../../ffi/windows_table.ts";
import { FileKind, kindOf, newIdentity } from "../../ffi/types.ts";
import { runtimeName } from "../helpers.ts";

interface Fake {
  raw: RawKernel32;
  calls: unknown[][];
  lastError: number;
  handle: number;
  attributes: number;
  lockResult: number;
  driveType: number;
}

function fake(): Fake {
  const state: Fake = {
    calls: [],
    lastError: 0,
    handle: 100,
    attributes: WIN32.FILE_ATTRIBUTE_NORMAL,
    lockResult: 1,
    driveType: 3,
    raw: undefined as unknown as RawKernel32,
  };
  const record = (name: string, result: number) => (...args: unknown[]) => {
    state.calls.push([name, ...args.map((a) => a instanceof Uint8Array ? [...a] : a)]);
    return result;
  };
  state.raw = {
    CreateFileW: (...args) => record("CreateFileW", state.handle)(...args),
    LockFileEx: (...args) => record("LockFileEx", state.lockResult)(...args),
    UnlockFileEx: (...args) => record("UnlockFileEx", 1)(...args),
    GetFileInformationByHandle: (handle, info) => {
      const view = new DataView(info.buffer, info.byteOffset);
      view.setUint32(LAYOUT.FILE_INFO_ATTRIBUTES, state.attributes, true);
      view.setUint32(LAYOUT.FILE_INFO_VOLUME_SERIAL, 0xabcd, true);
      view.setUint32(LAYOUT.FILE_INFO_INDEX_HIGH, 7, true);
      view.setUint32(LAYOUT.FILE_INFO_INDEX_LOW, 42, true);
      return record("GetFileInformationByHandle", 1)(handle);
    },
    GetFileAttributesW: (...args) => record("GetFileAttributesW", state.attributes)(...args),
    DeleteFileW: (...args) => record("DeleteFileW", 1)(...args),
    CloseHandle: (...args) => record("CloseHandle", 1)(...args),
    GetLastError: () => state.lastError,
    GetVolumePathNameW: (path, root) => {
      root.set(new Uint8Array(new Uint16Array([67, 58, 92, 0]).buffer)); // "C:\\"
      return record("GetVolumePathNameW", 1)(path);
    },
    GetVolumeInformationW: (root, _n, _nl, _s, _m, _f, name) => {
      name.set(new Uint8Array(new Uint16Array([78, 84, 70, 83, 0]).buffer)); // "NTFS"
      return record("GetVolumeInformationW", 1)(root);
    },
    GetDriveTypeW: (...args) => record("GetDriveTypeW", state.driveType)(...args),
    OpenProcess: (...args) => record("OpenProcess", state.handle === -1 ? 0 : 300)(...args),
    GetProcessTimes: (process, creation, ...rest) => {
      const view = new DataView(creation.buffer, creation.byteOffset);
      view.setUint32(0, 0x89abcdef, true);
      view.setUint32(4, 0x01dc0000, true);
      return record("GetProcessTimes", 1)(process, ...rest);
    },
  };
  return state;
}

test(`${runtimeName}: windows: paths become long UTF-16 paths with a NUL`, () => {
  assert.equal(longPath("C:\\a\\b.lock"), "\\\\?\\C:\\a\\b.lock");
  assert.equal(longPath("C:/a/b.lock"), "\\\\?\\C:\\a\\b.lock");
  assert.equal(longPath("\\\\server\\share\\x.lock"), "\\\\?\\UNC\\server\\share\\x.lock");
  assert.equal(longPath("\\\\?\\C:\\x"), "\\\\?\\C:\\x");
  const bytes = encodeWidePath("C:\\å");
  const units = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2);
  assert.deepEqual([...units], [..."\\\\?\\C:\\å"].map((c) => c.charCodeAt(0)).concat(0));
});

test(`${runtimeName}: windows: open, lock, identity and release map to kernel32`, () => {
  const f = fake();
  const b = windowsBinding("node-koffi", f.raw);
  const path = b.encodePath("C:\\x.lock");
  assert.equal(b.open(path, C.O_RDWR | C.O_CREAT | C.O_NOFOLLOW | C.O_CLOEXEC, 0o644), 100);
  const [, , access, share, security, disposition, flags] = f.calls[0] as number[];
  assert.equal(access >>> 0, (WIN32.GENERIC_READ | WIN32.GENERIC_WRITE) >>> 0);
  assert.equal(share, 7, "share read, write and delete");
  assert.equal(security, null, "not inheritable");
  assert.equal(disposition, WIN32.OPEN_ALWAYS);
  assert.equal(flags, WIN32.FILE_ATTRIBUTE_NORMAL | WIN32.FILE_FLAG_OPEN_REPARSE_POINT);
  b.open(path, C.O_RDONLY, 0);
  assert.equal((f.calls[1] as number[])[2], WIN32.GENERIC_READ);
  assert.equal((f.calls[1] as number[])[5], WIN32.OPEN_EXISTING);
  // O_EXCL: the state machine's create-if-missing, which must know it created the file.
  b.open(path, C.O_RDWR | C.O_CREAT | C.O_EXCL, 0o644);
  assert.equal((f.calls[2] as number[])[5], WIN32.CREATE_NEW);

  assert.equal(b.flock(100, C.LOCK_EX | C.LOCK_NB), 0);
  const lock = f.calls.at(-1) as unknown[];
  assert.equal(lock[0], "LockFileEx");
  assert.equal(lock[2], WIN32.LOCKFILE_FAIL_IMMEDIATELY | WIN32.LOCKFILE_EXCLUSIVE_LOCK);
  assert.deepEqual([lock[4], lock[5]], [1, 0], "one byte");
  const overlapped = new DataView(new Uint8Array(lock[6] as number[]).buffer);
  assert.equal(overlapped.getUint32(LAYOUT.OVERLAPPED_OFFSET, true), 0xfffffffe);
  assert.equal(overlapped.getUint32(LAYOUT.OVERLAPPED_OFFSET_HIGH, true), 0x7fffffff);
  b.flock(100, C.LOCK_SH | C.LOCK_NB);
  assert.equal((f.calls.at(-1) as unknown[])[2], WIN32.LOCKFILE_FAIL_IMMEDIATELY, "shared");

  f.lockResult = 0;
  f.lastError = 33;
  assert.equal(b.errnoName(-b.flock(100, C.LOCK_EX | C.LOCK_NB)), "EWOULDBLOCK");
  f.lastError = 997;
  assert.equal(b.errnoName(-b.flock(100, C.LOCK_EX | C.LOCK_NB)), "EWOULDBLOCK");
  assert.equal(b.flock(100, C.LOCK_UN), 0);
  assert.equal((f.calls.at(-1) as unknown[])[0], "UnlockFileEx");

  const id = newIdentity();
  assert.equal(b.fstat(100, id), 0);
  assert.deepEqual([...id].slice(0, 5), [0xabcd, 0, 42, 7, FileKind.FILE]);
  f.attributes = WIN32.FILE_ATTRIBUTE_DIRECTORY;
  b.fstat(100, id);
  assert.equal(kindOf(id), FileKind.DIRECTORY);
  f.attributes = WIN32.FILE_ATTRIBUTE_REPARSE_POINT;
  b.fstat(100, id);
  assert.equal(kindOf(id), FileKind.SYMLINK);
  assert.equal(b.close(100), 0);
  assert.equal(b.unlink(path), 0);
});

test(`${runtimeName}: windows: errors get POSIX names, delete-pending is contention`, () => {
  const f = fake();
  const b = windowsBinding("deno-ffi", f.raw);
  const path = b.encodePath("C:\\x.lock");
  f.handle = -1;
  const fails = (lastError: number) => {
    f.lastError = lastError;
    return b.errnoName(-b.open(path, C.O_RDWR | C.O_CREAT, 0));
  };
  assert.equal(fails(2), "ENOENT");
  assert.equal(fails(3), "ENOENT");
  assert.equal(fails(206), "ENAMETOOLONG");
  assert.equal(fails(123), "EINVAL");
  assert.equal(fails(80), "EEXIST");
  assert.equal(fails(183), "EEXIST");
  // ACCESS_DENIED: a directory, a pending delete, or really denied.
  f.attributes = WIN32.FILE_ATTRIBUTE_DIRECTORY;
  assert.equal(fails(5), "EISDIR");
  f.attributes = WIN32.INVALID_FILE_ATTRIBUTES; // and GetLastError stays 5
  assert.equal(fails(5), "EDELETEPENDING");
  f.attributes = WIN32.FILE_ATTRIBUTE_NORMAL;
  assert.equal(fails(5), "EACCES");
  assert.equal(b.errnoNumber("ELOOP"), 1921);
  assert.equal(b.errnoName(12345), "WIN12345");
  const id = newIdentity();
  f.lastError = 5;
  assert.equal(b.errnoName(-b.lstat(path, id)), "EDELETEPENDING");
});

test(`${runtimeName}: windows: a process's creation time is its start token`, () => {
  const f = fake();
  const b = windowsBinding("bun-ffi", f.raw);
  assert.equal(b.processStartTime?.(4242), `win:${(0x01dc0000n << 32n) | 0x89abcdefn}`);
  const open = f.calls.find((c) => c[0] === "OpenProcess")!;
  assert.deepEqual(open.slice(1), [WIN32.PROCESS_QUERY_LIMITED_INFORMATION, 0, 4242]);
  assert.ok(f.calls.some((c) => c[0] === "CloseHandle" && c[1] === 300), "handle closed");
  f.handle = -1; // OpenProcess fails
  assert.equal(b.processStartTime?.(4242), undefined);
});

test(`${runtimeName}: windows: statfs names the volume's filesystem and whether its drive is remote`, () => {
  const f = fake();
  const binding = windowsBinding("node-koffi", f.raw);
  const info = { magic: -1, name: "", local: undefined as boolean | undefined };
  assert.equal(binding.statfs!(encodeWidePath("C:\\data\\app.lock"), info), 0);
  assert.deepEqual(info, { magic: 0, name: "NTFS", local: true });
  f.driveType = 4; // DRIVE_REMOTE
  binding.statfs!(encodeWidePath("\\\\server\\share\\app.lock"), info);
  assert.equal(info.local, false);
});
