/** Rendering of keys, values and results for people (human output) and for programs (--json). */

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text when they are valid UTF-8, else null. */
export function asText(bytes: Uint8Array): string | null {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return null;
  }
}

/** A value for a person: a quoted string (JSON escapes) when it is UTF-8, else 0x-prefixed hex. */
export function showValue(bytes: Uint8Array): string {
  const text = asText(bytes);
  return text === null ? `0x${Buffer.from(bytes).toString('hex')}` : JSON.stringify(text);
}

/** A key as a node sent it: as showKey when it is UTF-8, else 0x-prefixed hex. */
export function showKeyBytes(key: Uint8Array): string {
  const text = asText(key);
  return text === null ? `0x${Buffer.from(key).toString('hex')}` : showKey(text);
}

/** A key as the user typed it, quoted only when it would otherwise be ambiguous (empty, spaces, quotes, control characters). */
export function showKey(key: string): string {
  return /^[^\s"'\\\p{Cc}]+$/u.test(key) ? key : JSON.stringify(key);
}

/** A value for --json: UTF-8 text as is, anything else in base64, with the encoding named. */
export function jsonValue(bytes: Uint8Array | null): { value: string | null; encoding: 'utf8' | 'base64' | null } {
  if (bytes === null) return { value: null, encoding: null };
  const text = asText(bytes);
  return text === null ? { value: Buffer.from(bytes).toString('base64'), encoding: 'base64' } : { value: text, encoding: 'utf8' };
}

/**
 * "index 42 term 3 (leader n1)"; for a write the cluster had applied before
 * (an exactly-once retry), "index 42 term 3 (leader n1, a retry of a write applied before)".
 */
export function showPosition(result: { index: number; term: number; leader: string | null; duplicate?: boolean }): string {
  const notes = [
    ...(result.leader === null ? [] : [`leader ${result.leader}`]),
    ...(result.duplicate === true ? ['a retry of a write applied before'] : []),
  ];
  return `index ${result.index} term ${result.term}${notes.length === 0 ? '' : ` (${notes.join(', ')})`}`;
}

/** An index where 0 means none (no snapshot yet, or a node too old to report it): "-" for 0. */
export function showOptionalIndex(index: number): string {
  return index === 0 ? '-' : String(index);
}

/** How long ago, for a person: "0.4 s ago", "3.2 s ago", "4.5 min ago", "2.1 h ago", "3.0 d ago". */
export function showAgo(ms: number): string {
  const seconds = Math.max(0, ms) / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s ago`;
  if (seconds < 3600) return `${(seconds / 60).toFixed(1)} min ago`;
  if (seconds < 86_400) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86_400).toFixed(1)} d ago`;
}

/** A plain-text table: columns padded to their widest cell, numbers right-aligned. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string[] {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => {
        const width = widths[column] ?? cell.length;
        if (column === cells.length - 1 && !rightAligned.has(column)) return cell;
        return rightAligned.has(column) ? cell.padStart(width) : cell.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
