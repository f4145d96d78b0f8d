/**
 * Keys, values and records: accepted as bytes or as strings (encoded as
 * UTF-8), and checked against the limits of client.proto before they are sent.
 */

import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from '../api/client-api.js';
import { type RaftLogOperation, rejectedBeforeSending } from './errors.js';

/** Bytes, or a string that stands for its UTF-8 encoding. */
export type Bytes = Uint8Array | string;

const encoder = new TextEncoder();

function toBytes(operation: RaftLogOperation, what: string, input: unknown): Uint8Array {
  if (typeof input === 'string') return encoder.encode(input);
  if (input instanceof Uint8Array) return input;
  const got = input === null ? 'null' : typeof input;
  throw rejectedBeforeSending(operation, `the ${what} must be a string or a Uint8Array, got ${got}`);
}

function sizeOf(bytes: number): string {
  return bytes === 1 ? '1 byte' : `${bytes} bytes`;
}

/** The key as bytes; throws RaftLogInvalidArgumentError when it is empty or over 4096 bytes. */
export function checkKey(operation: RaftLogOperation, key: unknown): Uint8Array {
  const bytes = toBytes(operation, 'key', key);
  if (bytes.length === 0) throw rejectedBeforeSending(operation, `the key is empty (keys are 1 to ${MAX_KEY_BYTES} bytes)`);
  if (bytes.length > MAX_KEY_BYTES) {
    throw rejectedBeforeSending(operation, `the key is ${sizeOf(bytes.length)}, over the limit of ${MAX_KEY_BYTES} bytes`);
  }
  return bytes;
}

/** A value, expected value or record as bytes; throws RaftLogInvalidArgumentError when it is over 1 MiB. */
export function checkValue(operation: RaftLogOperation, what: string, value: unknown): Uint8Array {
  const bytes = toBytes(operation, what, value);
  if (bytes.length > MAX_VALUE_BYTES) {
    throw rejectedBeforeSending(operation, `the ${what} is ${sizeOf(bytes.length)}, over the limit of 1 MiB (${MAX_VALUE_BYTES} bytes)`);
  }
  return bytes;
}
