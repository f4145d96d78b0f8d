/**
 * The key-files example as a child process (node --import tsx, so that
 * signals reach it, not a wrapper), its output read line by line.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const MAIN = new URL('../../examples/key-files/main.ts', import.meta.url).pathname;

export interface ExampleExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ExampleStart {
  readonly endpoints: readonly string[];
  readonly dir: string;
  readonly consumer: string;
  readonly keyPrefix: string;
  /** Extra environment (the planted bug). */
  readonly env?: Readonly<Record<string, string>>;
  /** SIGKILL the process as soon as it has printed this many "applied" lines: a crash in the middle of its work. */
  readonly killAfterApplied?: number;
}

const running = new Set<ExampleProcess>();

/** SIGKILLs every example process still running; for afterEach, so that a failed test leaves none behind. */
export async function killAllExamples(): Promise<void> {
  await Promise.all([...running].map((example) => example.kill()));
}

export class ExampleProcess {
  readonly lines: string[] = [];
  private stderrText = '';
  private exit: ExampleExit | null = null;
  /** Resolves once the process has exited and its output is read to the end. */
  readonly exited: Promise<ExampleExit>;

  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        running.delete(this);
        this.exit = { code, signal };
        resolve(this.exit);
      });
    });
  }

  static start(options: ExampleStart): ExampleProcess {
    const args = [
      '--endpoints',
      options.endpoints.join(','),
      '--dir',
      options.dir,
      '--consumer',
      options.consumer,
      '--key-prefix',
      options.keyPrefix,
    ];
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RAFTLOG_EXAMPLE_BUG: '', ...options.env },
    });
    const example = new ExampleProcess(child);
    running.add(example);
    let applied = 0;
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      example.lines.push(line);
      if (line.startsWith('applied ')) applied++;
      // In the line handler itself: the kill lands while the example is still at work on its batch.
      if (options.killAfterApplied !== undefined && applied >= options.killAfterApplied) child.kill('SIGKILL');
    });
    child.stderr?.on('data', (chunk: Buffer) => (example.stderrText += chunk.toString('utf8')));
    return example;
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The indexes of its "applied N ..." lines, in order. */
  get applied(): number[] {
    return this.indexesOf('applied');
  }

  /** The indexes of its "skipped N ..." lines, in order. */
  get skipped(): number[] {
    return this.indexesOf('skipped');
  }

  /** What it printed, for failure messages. */
  transcript(): string {
    return `stdout (last 30 lines):\n${this.lines.slice(-30).join('\n')}\nstderr:\n${this.stderrText}`;
  }

  /** Waits for a line matching `pattern`; fails at once if the process exits first. */
  async waitForLine(what: string, pattern: RegExp, timeoutMs: number): Promise<string> {
    return this.waitUntil(`a line with ${what}`, () => this.lines.find((line) => pattern.test(line)), timeoutMs);
  }

  /** Polls `check` until it returns a value; fails at once if the process exits first, or after timeoutMs. */
  async waitUntil<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs: number): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (this.exit !== null) throw new Error(`the example exited (${JSON.stringify(this.exit)}) before ${what}\n${this.transcript()}`);
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${this.transcript()}`);
      await sleep(50);
    }
  }

  /** Waits for it to exit by itself (a planned kill), SIGKILLing it after timeoutMs. */
  async waitForExit(timeoutMs: number): Promise<ExampleExit> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGTERM, and the exit it makes (SIGKILL after timeoutMs). */
  async stop(timeoutMs = 30_000): Promise<ExampleExit> {
    if (this.exit === null) this.child.kill('SIGTERM');
    return this.waitForExit(timeoutMs);
  }

  async kill(): Promise<void> {
    if (this.exit === null) this.child.kill('SIGKILL');
    await this.exited;
  }

  private indexesOf(word: string): number[] {
    const pattern = new RegExp(`^${word} (\\d+)\\b`);
    return this.lines.flatMap((line) => {
      const match = pattern.exec(line);
      return match === null ? [] : [Number(match[1])];
    });
  }
}
