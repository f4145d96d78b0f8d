/**
 * The calls on durable consumers (CommitPosition, DeleteConsumer, Consumers
 * in client.proto): their arguments, checked before anything is sent, and
 * how each is made. A consumer is a named position in the log, replicated
 * through Raft; committing or deleting one is a write, listing them a read.
 */

import type {
  CommitPositionReply,
  CommitPositionRequest,
  ConsumersReply,
  ConsumersRequest,
  DeleteConsumerReply,
  DeleteConsumerRequest,
} from '../api/client-api.js';
import { callDeadline, checkConsistency } from './call-arguments.js';
import { type RaftLogOperation, rejectedBeforeSending } from './errors.js';
import type { Operation } from './failover.js';
import type { CallOptions, ReadConsistency } from './options.js';
import { methodDefinition } from './proto.js';
import { commitPositionResult, consumerList, deleteConsumerResult, replyLeader } from './reply-decoders.js';
import type { CommitPositionResult, ConsumerList, DeleteConsumerResult } from './results.js';

/** Consumer names: 1..200 bytes of UTF-8 (client.proto). */
export const MAX_CONSUMER_NAME_BYTES = 200;

export interface CommitPositionOptions extends CallOptions {
  /** Allow a position below the consumer's current one (to read again); otherwise such a commit is refused. */
  readonly allowBackwards?: boolean;
}

export interface ConsumersOptions extends CallOptions {
  /** 'linearizable' (default) or 'local' (this node's state, may be stale), as for get(). */
  readonly consistency?: ReadConsistency;
}

/**
 * The names of the operations of this module and of subscriptions, as
 * errors name them. errors.ts's RaftLogOperation does not list them yet;
 * until it does, they are asserted to be operation names here, in this one
 * place.
 */
export const CONSUMER_OPERATIONS = {
  subscribe: 'subscribe',
  commitPosition: 'commitPosition',
  deleteConsumer: 'deleteConsumer',
  consumers: 'consumers',
} as const satisfies Record<string, RaftLogOperation>;

/** The consumer's name, checked: a string of 1 to 200 bytes of UTF-8. */
export function checkConsumerName(operation: RaftLogOperation, consumer: unknown): string {
  if (typeof consumer !== 'string') {
    throw rejectedBeforeSending(operation, `the consumer name must be a string, got ${consumer === null ? 'null' : typeof consumer}`);
  }
  const bytes = Buffer.byteLength(consumer, 'utf8');
  if (bytes === 0) throw rejectedBeforeSending(operation, `the consumer name is empty (names are 1 to ${MAX_CONSUMER_NAME_BYTES} bytes of UTF-8)`);
  if (bytes > MAX_CONSUMER_NAME_BYTES) {
    throw rejectedBeforeSending(operation, `the consumer name is ${bytes} bytes, over the limit of ${MAX_CONSUMER_NAME_BYTES}`);
  }
  return consumer;
}

/** A log position as a consumer commits it: a whole number from 0 on. */
export function checkPosition(operation: RaftLogOperation, position: unknown): number {
  if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
    throw rejectedBeforeSending(operation, `the position must be a whole number from 0 on, got ${String(position)}`);
  }
  return position;
}

export function commitPositionOperation(
  consumer: string,
  position: number,
  options: CommitPositionOptions,
  clientDeadlineMs: number,
): Operation<CommitPositionRequest, CommitPositionReply, CommitPositionResult> {
  const op = CONSUMER_OPERATIONS.commitPosition;
  const allowBackwards = options.allowBackwards ?? false;
  if (typeof allowBackwards !== 'boolean') throw rejectedBeforeSending(op, `allowBackwards must be true or false, got ${String(allowBackwards)}`);
  return {
    name: op,
    method: methodDefinition('CommitPosition'),
    write: true,
    request: { consumer: checkConsumerName(op, consumer), position: checkPosition(op, position), allowBackwards },
    deadlineMs: callDeadline(op, options, clientDeadlineMs),
    decode: (reply, endpoint) => commitPositionResult(reply, endpoint.address),
    leaderOf: replyLeader,
  };
}

export function deleteConsumerOperation(
  consumer: string,
  options: CallOptions,
  clientDeadlineMs: number,
): Operation<DeleteConsumerRequest, DeleteConsumerReply, DeleteConsumerResult> {
  const op = CONSUMER_OPERATIONS.deleteConsumer;
  return {
    name: op,
    method: methodDefinition('DeleteConsumer'),
    write: true,
    request: { consumer: checkConsumerName(op, consumer) },
    deadlineMs: callDeadline(op, options, clientDeadlineMs),
    decode: (reply, endpoint) => deleteConsumerResult(reply, endpoint.address),
    leaderOf: replyLeader,
  };
}

export function consumersOperation(options: ConsumersOptions, clientDeadlineMs: number): Operation<ConsumersRequest, ConsumersReply, ConsumerList> {
  const op = CONSUMER_OPERATIONS.consumers;
  const consistency = checkConsistency(op, options.consistency);
  return {
    name: op,
    method: methodDefinition('Consumers'),
    write: false,
    request: { consistency: consistency === 'local' ? 'READ_CONSISTENCY_LOCAL' : 'READ_CONSISTENCY_LINEARIZABLE' },
    deadlineMs: callDeadline(op, options, clientDeadlineMs),
    decode: (reply, endpoint) => consumerList(reply, endpoint.address),
    // The reply names the node that answered, not the leader.
    leaderOf: () => null,
  };
}
