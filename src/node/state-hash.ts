import { hash } from 'node:crypto';

/**
 * Order-free digests of sets: each member hashes to a 256-bit number and the
 * set's digest is their sum mod 2^256, so adding, replacing or removing one
 * member costs one hash, whatever the order members came in.
 */
export const HASH_MODULUS = 1n << 256n;

export function addHash(sum: bigint, added: bigint): bigint {
  return (sum + added) % HASH_MODULUS;
}

export function subtractHash(sum: bigint, removed: bigint): bigint {
  return (sum - removed + HASH_MODULUS) % HASH_MODULUS;
}

export type HashPart = Uint8Array | string | number | boolean;

/**
 * SHA-256, read as a big-endian integer, of the parts each prefixed by its
 * length (numbers as 8 bytes, booleans as 1), so that no two different lists
 * of parts hash the same bytes.
 */
export function hashOf(tag: string, ...parts: readonly HashPart[]): bigint {
  const encoded: Uint8Array[] = [];
  let total = 0;
  for (const part of [tag, ...parts]) {
    const bytes = encodePart(part);
    const length = Buffer.allocUnsafe(8);
    length.writeBigUInt64BE(BigInt(bytes.byteLength));
    encoded.push(length, bytes);
    total += 8 + bytes.byteLength;
  }
  return BigInt(`0x${hash('sha256', Buffer.concat(encoded, total), 'hex')}`);
}

function encodePart(part: HashPart): Uint8Array {
  if (typeof part === 'string') return Buffer.from(part, 'utf8');
  if (typeof part === 'boolean') return Uint8Array.of(part ? 1 : 0);
  if (typeof part === 'number') {
    const bytes = Buffer.allocUnsafe(8);
    bytes.writeBigUInt64BE(BigInt(part));
    return bytes;
  }
  return part;
}

/** 64 lowercase hex digits of a sum. */
export function hashHex(sum: bigint): string {
  return sum.toString(16).padStart(64, '0');
}
