// What statfs says, in words (src/filesystems.ts), and what a network filesystem changes:
// removeOnRelease is refused there. No network filesystem exists on these machines, so the
// answer of statfs is given by a fake binding for one directory; everything else is real.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { acquire, inspect, LockError, probe, tryAcquire } from "../mod.ts";
import type { Binding, FilesystemInfo } from "../ffi/types.ts";
import { describeFilesystem, filesystemOf } from "../src/filesystems.ts";
import { inTemp, runtimeName } from "./helpers.ts";

const info = (fields: Partial<FilesystemInfo>): FilesystemInfo => ({
  magic: 0,
  name: "",
  local: undefined,
  ...fields,
});

test(`${runtimeName}: filesystems: Linux magic numbers, macOS names, Windows drives`, () => {
  const cases: [Partial<FilesystemInfo>, string, boolean, boolean][] = [
    [{ magic: 0xef53 }, "ext4", false, false],
    [{ magic: 0x01021994 }, "tmpfs", false, false],
    [{ magic: 0x65735546 }, "fuse", false, true],
    [{ magic: 0x6969 }, "nfs", true, true],
    [{ magic: 0x517b }, "smb", true, true],
    [{ magic: 0xff534d42 }, "cifs", true, true],
    [{ magic: 0xfe534d42 }, "smb2", true, true],
    [{ magic: 0x01021997 }, "9p", true, true],
    [{ magic: 0x00c36400 }, "ceph", true, true],
    [{ magic: 0x0bd00bd0 }, "lustre", true, true],
    [{ magic: 0x47504653 }, "gpfs", true, true],
    [{ magic: 0x12345678 }, "0x12345678", false, false],
    [{ name: "apfs", local: true }, "apfs", false, false],
    [{ name: "nfs", local: false }, "nfs", true, true],
    [{ name: "smbfs", local: undefined }, "smbfs", true, true],
    [{ name: "macfuse", local: true }, "macfuse", false, true],
    [{ name: "NTFS", local: true }, "ntfs", false, false],
    [{ name: "NTFS", local: false }, "ntfs", true, true],
    [{}, "unknown", false, false],
  ];
  for (const [fields, fsType, network, mayHang] of cases) {
    assert.deepEqual(
      describeFilesystem(info(fields)),
      { fsType, network, mayHang },
      JSON.stringify(fields),
    );
  }
});

/** Makes `dir` look like an NFS mount to this process (the answer is cached per directory). */
function seemsNfs(dir: string): void {
  const nfs = {
    encodePath: (path: string) => path,
    statfs: (_path: unknown, out: FilesystemInfo) => {
      out.magic = 0x6969;
      return 0;
    },
  } as unknown as Binding;
  assert.equal(filesystemOf(join(dir, "any.lock"), nfs).fsType, "nfs");
}

test(
  `${runtimeName}: filesystems: on a network filesystem removeOnRelease is refused, clearly`,
  inTemp(async (dir) => {
    seemsNfs(dir);
    const path = join(dir, "shared-by-hosts.lock");
    assert.throws(
      () => tryAcquire(path, { removeOnRelease: true }),
      (e) =>
        e instanceof LockError && e.code === "EINVAL" && e.path === path &&
        /removeOnRelease is refused on a network filesystem \(nfs\)/.test(e.message),
    );
    await assert.rejects(
      acquire(path, { removeOnRelease: true, timeout: 100 }),
      (e) => e instanceof LockError && e.code === "EINVAL",
    );
    assert.ok(!existsSync(path), "nothing was created");
    // Without it the lock works, and probe/inspect say where it lives.
    const lock = tryAcquire(path);
    assert.ok(lock !== null);
    lock.releaseSync();
    const probed = probe(path);
    assert.equal(probed.fsType, "nfs");
    assert.equal(probed.network, true);
    assert.match(probed.reason, /network filesystem.*removeOnRelease is refused/);
    assert.equal(inspect(path).network, true);
  }),
);

test(
  `${runtimeName}: filesystems: control: on a local filesystem removeOnRelease removes the file`,
  inTemp((dir) => {
    const path = join(dir, "local.lock");
    const lock = tryAcquire(path, { removeOnRelease: true });
    assert.ok(lock !== null);
    lock.releaseSync();
    assert.ok(!existsSync(path));
    assert.equal(probe(path).network, false);
  }),
);
