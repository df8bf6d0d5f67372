// The pidfile record: what a holder writes, and what a reader accepts as one.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeRecord,
  encodeRecord,
  newToken,
  type PidRecord,
  RECORD_LIMIT,
} from "../../src/pidfile/record.ts";
import { runtimeName } from "../helpers.ts";

const RECORD: PidRecord = {
  pid: 4711,
  hostname: "build-1",
  startToken: "1158961@a813653a",
  acquiredAt: "2026-11-23T03:57:42.655Z",
  token: "c160ffdca687664e28a62cb9fa0fbcb3",
  runtime: "deno",
  backend: "pidfile",
};

const bytes = (text: string) => new TextEncoder().encode(text);

test(`${runtimeName}: record: one line of JSON that decodes to itself`, () => {
  const encoded = encodeRecord(RECORD);
  const text = new TextDecoder().decode(encoded);
  assert.equal(text.indexOf("\n"), text.length - 1, "exactly one line");
  assert.deepEqual(decodeRecord(encoded), RECORD);
  assert.deepEqual(decodeRecord(bytes(JSON.stringify({ ...RECORD, startToken: null }))), {
    ...RECORD,
    startToken: null,
  });
});

test(`${runtimeName}: record: tokens are 32 fresh hex digits`, () => {
  const a = newToken();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, newToken());
});

test(`${runtimeName}: record: anything but a complete record is not one`, () => {
  const without = (field: keyof PidRecord) => {
    const copy: Record<string, unknown> = { ...RECORD };
    delete copy[field];
    return JSON.stringify(copy);
  };
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["partial", bytes('{"pid":12')],
    ["binary", new Uint8Array([0xff, 0x00, 0xfe, 0x01])],
    ["an array", bytes("[1,2]")],
    ["a number", bytes("42")],
    ["null", bytes("null")],
    ["another object", bytes('{"hello":"world"}')],
    ["no pid", bytes(without("pid"))],
    ["pid 0", bytes(JSON.stringify({ ...RECORD, pid: 0 }))],
    ["pid not an integer", bytes(JSON.stringify({ ...RECORD, pid: 1.5 }))],
    ["no hostname", bytes(without("hostname"))],
    ["start token a number", bytes(JSON.stringify({ ...RECORD, startToken: 7 }))],
    ["no token", bytes(without("token"))],
    ["a token that is a path", bytes(JSON.stringify({ ...RECORD, token: "../../etc/passwd" }))],
    ["too large", new Uint8Array(RECORD_LIMIT + 1).fill(0x20)],
  ];
  for (const [name, input] of cases) assert.equal(decodeRecord(input), undefined, name);
});
