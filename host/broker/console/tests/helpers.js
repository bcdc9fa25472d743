// Byte builders for the tests: little-endian (screen format) and
// big-endian (stream frames) integers, written out by hand from the
// layouts documented in sdk/screen-format/src/lib.rs and
// host/protocol/src/stream.rs — not with the code under test.

export function le16(v) {
  return [v & 0xff, (v >>> 8) & 0xff];
}
export function le32(v) {
  const u = v >>> 0;
  return [u & 0xff, (u >>> 8) & 0xff, (u >>> 16) & 0xff, (u >>> 24) & 0xff];
}
export function le64(v) {
  const b = BigInt(v);
  const out = [];
  for (let i = 0n; i < 8n; i++) out.push(Number((b >> (8n * i)) & 0xffn));
  return out;
}
export function be32(v) {
  const u = v >>> 0;
  return [(u >>> 24) & 0xff, (u >>> 16) & 0xff, (u >>> 8) & 0xff, u & 0xff];
}
export function be64(v) {
  const b = BigInt(v);
  const out = [];
  for (let i = 7n; i >= 0n; i--) out.push(Number((b >> (8n * i)) & 0xffn));
  return out;
}
export function utf8(s) {
  return [...new TextEncoder().encode(s)];
}
export function bytes(...parts) {
  return Uint8Array.from(parts.flat());
}
