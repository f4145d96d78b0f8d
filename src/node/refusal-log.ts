import type { Logger } from 'pino';

/** Most senders remembered; a flood of made-up sender ids forgets the oldest rather than growing without bound. */
const MAX_SENDERS = 256;

/**
 * Logs a refusal as a warning the first time a sender gets it, and at debug
 * level while the same refusal repeats: a refused peer retries every second
 * or so, and one line says all there is to say. Once the sender gets through
 * again (`clear`), the next refusal is a warning again.
 */
export class RefusalLog {
  private readonly seen = new Map<string, Set<string>>();

  constructor(private readonly log: Logger) {}

  warn(sender: string, reason: string, fields: Record<string, unknown>, message: string): void {
    let reasons = this.seen.get(sender);
    if (reasons?.has(reason) === true) {
      this.log.debug(fields, `${message} (again)`);
      return;
    }
    if (reasons === undefined) {
      if (this.seen.size >= MAX_SENDERS) this.seen.delete(this.seen.keys().next().value as string);
      reasons = new Set();
      this.seen.set(sender, reasons);
    }
    reasons.add(reason);
    this.log.warn(fields, message);
  }

  clear(sender: string): void {
    if (this.seen.size > 0) this.seen.delete(sender);
  }
}
