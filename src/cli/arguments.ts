/** Checks of command-line arguments that the client library would reject less clearly. */
import { UsageError } from './exit-codes.js';

/** `text` as a whole number of at least `min`; a UsageError naming `what` (e.g. "tail: --from") otherwise. */
export function wholeNumber(what: string, text: string, min: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < min) {
    const kind = min === 0 ? 'a whole number' : `a whole number from ${min} on`;
    throw new UsageError(`${what} must be ${kind}, got "${text}"`);
  }
  return value;
}

/** A comma-separated list, its items trimmed, empty items left out. */
export function commaList(text: string): string[] {
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '');
}
