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

/** A key as the user typed it, quoted only when it would otherwise be ambiguous (empty, spaces, quotes, control characters). */
export function showKey(key: string): string {
  return /^[^\s"'\\\p{Cc}]+$/u.test(key) ? key : JSON.stringify(key);
}

/** A value for --json: UTF-8 text as is, anything else in base64, with the encoding named. */
export function jsonValue(bytes: Uint8Array | null): { value: string | null; encoding: 'utf8' | 'base64' | null } {
  if (bytes === null) return { value: null, encoding: null };
  const text = asText(bytes);
  return text === null
    ? { value: Buffer.from(bytes).toString('base64'), encoding: 'base64' }
    : { value: text, encoding: 'utf8' };
}

/** "index 42 term 3 (leader n1)" */
export function showPosition(result: { index: number; term: number; leader: string | null }): string {
  return `index ${result.index} term ${result.term}${result.leader === null ? '' : ` (leader ${result.leader})`}`;
}

/** An index where 0 means none (no snapshot yet, or a node too old to report it): "-" for 0. */
export function showOptionalIndex(index: number): string {
  return index === 0 ? '-' : String(index);
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
