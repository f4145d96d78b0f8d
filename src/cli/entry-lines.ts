/**
 * How `tail` shows a subscribed entry: one line for a person, one JSON
 * object for a program (bytes as in the other commands' --json: UTF-8 text
 * as is, else base64, with the encoding named).
 */
import type { KeyChange, SubscribedEntry, SubscribeView } from '../client/index.js';
import type { Json } from './context.js';
import { jsonValue, showKeyBytes, showValue } from './format.js';

/**
 * "42  term 3  append  "order 1"  (producer 7 seq 1)". After the kind: the
 * record, key="value" (a cas adds `if "expected"` or `if absent`), the
 * consumer and its position; in the changes view, key: before → after.
 */
export function entryLine(entry: SubscribedEntry, view: SubscribeView): string {
  const data = view === 'changes' ? entry.changes.map(changeText).join(', ') : commandText(entry);
  const producer = entry.producer === null ? '' : `  (producer ${entry.producer.id} seq ${entry.producer.sequence})`;
  return `${entry.index}  term ${entry.term}  ${entry.kind}${data === '' ? '' : `  ${data}`}${producer}`;
}

function commandText(entry: SubscribedEntry): string {
  const key = entry.key === null ? '' : showKeyBytes(entry.key);
  switch (entry.kind) {
    case 'append':
      return entry.record === null ? '' : showValue(entry.record);
    case 'put':
      return `${key}=${entry.value === null ? '' : showValue(entry.value)}`;
    case 'cas':
      return `${key}=${entry.value === null ? '' : showValue(entry.value)} if ${entry.expected === null ? 'absent' : showValue(entry.expected)}`;
    case 'delete':
      return key;
    case 'commit-position':
      return `${entry.consumer ?? ''} at ${entry.position ?? 0}`;
    case 'delete-consumer':
      return entry.consumer ?? '';
    case 'no-command':
    case 'register-producer':
      return '';
  }
}

function changeText(change: KeyChange): string {
  const before = change.before === null ? '(absent)' : showValue(change.before);
  const after = change.after === null ? '(deleted)' : showValue(change.after);
  return `${showKeyBytes(change.key)}: ${before} → ${after}`;
}

/** The entry's fields that it carries (null ones left out), bytes as { value, encoding }. */
export function entryJson(entry: SubscribedEntry, view: SubscribeView): { readonly [key: string]: Json } {
  const fields: { [key: string]: Json } = { index: entry.index, term: entry.term, kind: entry.kind };
  if (entry.record !== null) fields.record = jsonValue(entry.record);
  if (entry.key !== null) fields.key = jsonValue(entry.key);
  if (entry.value !== null) fields.value = jsonValue(entry.value);
  if (entry.kind === 'cas' && view === 'commands') {
    if (entry.expected === null) fields.expectAbsent = true;
    else fields.expected = jsonValue(entry.expected);
  }
  if (entry.consumer !== null) fields.consumer = entry.consumer;
  if (entry.position !== null) fields.position = entry.position;
  if (entry.producer !== null) fields.producer = { id: entry.producer.id, sequence: entry.producer.sequence };
  if (view === 'changes') fields.changes = entry.changes.map(changeJson);
  if (entry.proposedAtMs !== null) fields.proposedAtMs = entry.proposedAtMs;
  return fields;
}

function changeJson(change: KeyChange): Json {
  return {
    key: jsonValue(change.key),
    before: change.before === null ? null : jsonValue(change.before),
    after: change.after === null ? null : jsonValue(change.after),
  };
}
