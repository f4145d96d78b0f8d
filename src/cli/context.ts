/**
 * What a CLI command gets to work with: the checked global options, a client
 * built from them, and one place to print results and set the exit code.
 */
import type { Command } from 'commander';
import { parseEndpoints, splitEndpointList } from '../client/endpoints.js';
import type { RaftLogClient, TlsOptions } from '../client/index.js';
import { ExitCode, UsageError } from './exit-codes.js';

export const DEFAULT_ENDPOINTS = '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003';
export const DEFAULT_TIMEOUT_MS = 5000;
export const ENDPOINTS_ENV = 'RAFTLOG_ENDPOINTS';
/** Where --tls-ca, --tls-cert and --tls-key default from (PEM file paths). */
export const TLS_ENV = { ca: 'RAFTLOG_TLS_CA', cert: 'RAFTLOG_TLS_CERT', key: 'RAFTLOG_TLS_KEY' } as const;

export type Json = string | number | boolean | null | readonly Json[] | { readonly [key: string]: Json };

export interface CliIo {
  /** Writes one line to standard output. */
  readonly out: (line: string) => void;
  /** Writes one line to standard error. */
  readonly err: (line: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  /**
   * Calls `listener` once when the user asks the process to stop (SIGINT,
   * SIGTERM), instead of the process dying at once; returns a function that
   * stops listening (a second signal then ends the process as usual).
   */
  readonly onInterrupt: (listener: () => void) => () => void;
}

/** How a command's client differs from the default one. */
export interface ClientChoices {
  /** Exactly-once writes (RaftLogClientOptions.exactlyOnce). */
  readonly exactlyOnce?: boolean;
  /** Follow the cluster's membership (RaftLogClientOptions.followMembership): for a command that runs until stopped. */
  readonly followMembership?: boolean;
}

export interface GlobalOptions {
  /** host:port (or id=host:port) of each node. */
  readonly endpoints: readonly string[];
  /** Deadline of each call in milliseconds. */
  readonly timeoutMs: number;
  /** Machine output: one JSON object per result. */
  readonly json: boolean;
  /** PEM files for TLS (--tls-ca, --tls-cert, --tls-key); absent: plaintext. */
  readonly tls?: TlsOptions;
}

export interface CliContext {
  readonly io: CliIo;
  /** The global options (--endpoints, --timeout, --json), checked; throws UsageError. */
  globals(): GlobalOptions;
  /** Runs `use` with a client made from the global options (and `choices`) and closes it afterwards. */
  withClient<T>(use: (client: RaftLogClient) => Promise<T>, choices?: ClientChoices): Promise<T>;
  /** Prints one result: `json` as one line with --json, else the human line(s). */
  result(json: { readonly [key: string]: Json }, human: string | readonly string[]): void;
  /** The exit code once the command returns (0 unless set). */
  exitWith(code: ExitCode): void;
  /**
   * Reports a failure on standard error (one line, JSON with --json, where
   * `fields` are added to the error object) and sets the exit code.
   */
  fail(code: ExitCode, kind: string, message: string, fields?: { readonly [key: string]: Json }): void;
}

/** One subcommand of the CLI. To add one, write a module that exports a CliCommand and list it in commands/index.ts. */
export interface CliCommand {
  /** Adds the subcommand (arguments, options, action) to the program. */
  register(program: Command, context: CliContext): void;
}

interface RawGlobals {
  endpoints?: string;
  timeout?: string;
  json?: boolean;
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export class Context implements CliContext {
  exitCode: ExitCode = ExitCode.OK;

  constructor(
    private readonly program: Command,
    readonly io: CliIo,
  ) {}

  globals(): GlobalOptions {
    const raw = this.program.opts<RawGlobals>();
    const list = raw.endpoints ?? this.io.env[ENDPOINTS_ENV] ?? DEFAULT_ENDPOINTS;
    const source = raw.endpoints !== undefined ? '--endpoints' : this.io.env[ENDPOINTS_ENV] !== undefined ? ENDPOINTS_ENV : 'the default endpoints';
    let endpoints: string[];
    try {
      endpoints = parseEndpoints(splitEndpointList(list)).map((spec) => (spec.node === null ? spec.address : `${spec.node}=${spec.address}`));
    } catch (error) {
      throw new UsageError(`${source}: ${(error as Error).message}`);
    }
    let timeoutMs = DEFAULT_TIMEOUT_MS;
    if (raw.timeout !== undefined) {
      timeoutMs = Number(raw.timeout);
      if (!/^\d+$/.test(raw.timeout.trim()) || timeoutMs <= 0) {
        throw new UsageError(`--timeout must be a positive whole number of milliseconds, got "${raw.timeout}"`);
      }
    }
    return { endpoints, timeoutMs, json: raw.json === true, ...this.tls(raw) };
  }

  private tls(raw: RawGlobals): { tls?: TlsOptions } {
    const file = (flag: string | undefined, env: string): string | undefined => {
      const value = flag ?? this.io.env[env];
      return value === undefined || value === '' ? undefined : value;
    };
    const ca = file(raw.tlsCa, TLS_ENV.ca);
    const cert = file(raw.tlsCert, TLS_ENV.cert);
    const key = file(raw.tlsKey, TLS_ENV.key);
    if ((cert === undefined) !== (key === undefined)) {
      throw new UsageError(
        `--tls-cert and --tls-key go together (or ${TLS_ENV.cert} and ${TLS_ENV.key}); got only ${cert === undefined ? '--tls-key' : '--tls-cert'}`,
      );
    }
    if (ca === undefined && cert === undefined) return {};
    return { tls: { ...(ca === undefined ? {} : { ca }), ...(cert === undefined || key === undefined ? {} : { cert, key }) } };
  }

  async withClient<T>(use: (client: RaftLogClient) => Promise<T>, choices: ClientChoices = {}): Promise<T> {
    const { endpoints, timeoutMs, tls } = this.globals();
    // Loaded on first use, so that `raftlog --help` and usage errors load no gRPC code.
    const { RaftLogClient } = await import('../client/index.js');
    // One command, one process: finding the leader or the members in the background would not pay off.
    const client = new RaftLogClient({
      endpoints,
      deadlineMs: timeoutMs,
      discoverLeader: false,
      followMembership: choices.followMembership ?? false,
      exactlyOnce: choices.exactlyOnce ?? false,
      ...(tls === undefined ? {} : { tls }),
    });
    try {
      return await use(client);
    } finally {
      client.close();
    }
  }

  result(json: { readonly [key: string]: Json }, human: string | readonly string[]): void {
    if (this.globals().json) {
      this.io.out(JSON.stringify(json));
      return;
    }
    for (const line of typeof human === 'string' ? [human] : human) this.io.out(line);
  }

  exitWith(code: ExitCode): void {
    this.exitCode = code;
  }

  fail(code: ExitCode, kind: string, message: string, fields: { readonly [key: string]: Json } = {}): void {
    this.io.err(this.globals().json ? JSON.stringify({ error: { kind, ...fields, message } }) : `error: ${message}`);
    this.exitCode = code;
  }
}
