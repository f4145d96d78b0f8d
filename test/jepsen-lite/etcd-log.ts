/**
 * Reads the register histories Jepsen logged while testing etcd (the
 * known-answer data of Horn & Kroening and of porcupine) into our events.
 *
 *     INFO  jepsen.util - 2	:invoke	:cas	[3 0]
 *     INFO  jepsen.util - 2	:ok	:cas	[3 0]
 *     INFO  jepsen.util - 7	:info	:write	:timed-out
 *
 * Fields are separated by tabs in most files and by spaces in some. Values
 * are EDN: `nil`, integers, vectors, and keywords where a timed-out operation
 * has no result.
 */
import { type ClientEvent, COMPARE_FAILED, type OperationF, type OperationType } from './history.js';

/** The whole file is one register. */
export const ETCD_KEY = 'etcd';
/**
 * The logs carry no clock, only order: event times are line numbers, one
 * millisecond apart so that a violation window's "ms" columns read as line numbers.
 */
export const ETCD_LINE_NS = 1_000_000;

const LINE = /^(?:[A-Z]+\s+[\w.$]+\s+-\s+)?(\d+)\s+:(invoke|ok|fail|info)\s+:(read|write|cas)\s+(.+?)\s*$/;

type Edn = number | null | string | Edn[];

export function parseEtcdLog(text: string): ClientEvent[] {
  const events: ClientEvent[] = [];
  // A completion that carries a keyword instead of a result takes its argument from its invoke.
  const invoked = new Map<number, unknown>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (line === '') continue;
    const number = i + 1;
    const match = LINE.exec(line);
    if (match === null) throw new Error(`etcd log line ${number}: not a Jepsen operation: ${JSON.stringify(line)}`);
    const [, processText = '', typeText = '', fText = '', valueText = ''] = match;
    // The pattern admits only these words.
    const type = typeText as OperationType;
    const f = fText as OperationF;
    const process = Number(processText);
    const parsed = parseEdn(valueText, number);
    const base = { process, type, f, key: ETCD_KEY, time: number * ETCD_LINE_NS, node: '' };

    if (type === 'invoke') {
      invoked.set(process, parsed);
      events.push({ ...base, value: parsed });
      continue;
    }
    const argument = invoked.get(process) ?? null;
    invoked.delete(process);
    if (isKeyword(parsed)) {
      const value = f === 'read' ? null : argument;
      events.push({ ...base, value, error: parsed.slice(1) });
    } else if (type === 'fail' && f === 'cas') {
      // etcd answers a cas with :fail only when the comparison failed.
      events.push({ ...base, value: parsed, error: COMPARE_FAILED });
    } else {
      events.push({ ...base, value: parsed });
    }
  }
  return events;
}

const isKeyword = (value: Edn): value is string => typeof value === 'string' && value.startsWith(':');

/** The EDN subset these logs use: nil, integers, keywords, and vectors of them. */
function parseEdn(text: string, line: number): Edn {
  const tokens = text.match(/[[\]]|[^\s,[\]]+/g) ?? [];
  let position = 0;
  const fail = (why: string): never => {
    throw new Error(`etcd log line ${line}: ${why} in value ${JSON.stringify(text)}`);
  };
  const value = (): Edn => {
    const token = tokens[position++];
    if (token === undefined) return fail('unexpected end');
    if (token === '[') {
      const items: Edn[] = [];
      while (tokens[position] !== ']') {
        if (position >= tokens.length) fail('unclosed vector');
        items.push(value());
      }
      position++;
      return items;
    }
    if (token === 'nil') return null;
    if (/^-?\d+$/.test(token)) return Number(token);
    if (/^:[\w.*+!?<>=/-]+$/.test(token)) return token;
    return fail(`cannot read ${JSON.stringify(token)}`);
  };
  const result = value();
  if (position !== tokens.length) fail('trailing text');
  return result;
}
