import type { Message } from './types.js';

/** A message as a role writes it: the node fills in `from` and, unless given, its current `term`. */
export type OutgoingMessage<M extends Message = Message> = M extends Message ? Omit<M, 'from' | 'term'> & { term?: number } : never;
