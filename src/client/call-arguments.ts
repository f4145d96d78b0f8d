/**
 * Checks of a call's arguments other than keys and values (those are in
 * bytes.ts), made before anything is sent: each throws
 * RaftLogInvalidArgumentError with endpoint null, saying what is wrong.
 */
import { type EndpointSpec, parseEndpoint } from './endpoints.js';
import { type RaftLogOperation, rejectedBeforeSending } from './errors.js';
import type { CallOptions, ReadConsistency } from './options.js';

/** The call's deadline in milliseconds: its own, else the client's. */
export function callDeadline(operation: RaftLogOperation, options: CallOptions, clientDeadlineMs: number): number {
  const deadlineMs = options.deadlineMs ?? clientDeadlineMs;
  if (!Number.isFinite(deadlineMs) || deadlineMs <= 0) {
    throw rejectedBeforeSending(operation, `deadlineMs must be a positive number of milliseconds, got ${String(deadlineMs)}`);
  }
  return deadlineMs;
}

/** The consistency a read asks for; linearizable unless said otherwise. */
export function checkConsistency(operation: RaftLogOperation, consistency: ReadConsistency | undefined): ReadConsistency {
  const asked = consistency ?? 'linearizable';
  if (asked !== 'linearizable' && asked !== 'local') {
    throw rejectedBeforeSending(operation, `consistency must be 'linearizable' or 'local', got ${String(asked)}`);
  }
  return asked;
}

/** Checks where a log read starts; returns how many entries it asks for (1 to 1000, default 1000). */
export function checkLogRange(operation: RaftLogOperation, fromIndex: number, maxEntries: number | undefined): number {
  if (!Number.isSafeInteger(fromIndex) || fromIndex < 1) {
    throw rejectedBeforeSending(operation, `fromIndex must be a positive integer, got ${fromIndex}`);
  }
  const entries = maxEntries ?? 1000;
  if (!Number.isInteger(entries) || entries < 1 || entries > 1000) {
    throw rejectedBeforeSending(operation, `maxEntries must be an integer from 1 to 1000, got ${entries}`);
  }
  return entries;
}

/** A member id, trimmed; it must not be empty. */
export function checkMemberId(operation: RaftLogOperation, id: string): string {
  if (typeof id !== 'string' || id.trim() === '') throw rejectedBeforeSending(operation, 'member id must not be empty');
  return id.trim();
}

/** A new member's address as host:port; it must not name a node id (that is given separately). */
export function checkMemberAddress(operation: RaftLogOperation, address: string): string {
  const endpoint = parsedEndpoint(operation, address);
  if (endpoint.node !== null) throw rejectedBeforeSending(operation, `address "${address}" names a node id; give the id separately`);
  return endpoint.address;
}

/** The host:port of the one endpoint a call names. */
export function checkEndpointAddress(operation: RaftLogOperation, endpoint: string): string {
  return parsedEndpoint(operation, endpoint).address;
}

function parsedEndpoint(operation: RaftLogOperation, spec: string): EndpointSpec {
  try {
    return parseEndpoint(spec);
  } catch (error) {
    throw rejectedBeforeSending(operation, (error as Error).message);
  }
}
