/**
 * Open-loop Put load: requests leave at a fixed arrival rate whatever the
 * replies do, as real clients far more numerous than the cluster's capacity
 * would send them. Each request has its own deadline and is sent once over
 * the raw gRPC stub (no retries), so every refusal (RESOURCE_EXHAUSTED) is
 * counted as one.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { status as grpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { BenchClient, Member } from '../cluster/client.js';
import { errorKind, keyOf, now } from '../cluster/load.js';
import { type LatencyStats, latencyStats } from '../cluster/stats.js';

export interface OpenLoopOptions {
  readonly ratePerS: number;
  readonly durationS: number;
  /** Requests in flight past which a due request is skipped (counted), so the generator cannot drown itself. */
  readonly maxInFlight: number;
  readonly valueSize: number;
  readonly keys: number;
  /** Called once, when the last request of the window is due: the load stops, replies may still arrive. */
  readonly onWindowEnd?: () => void;
}

/** One second of the window, by the time requests were due (not by when their replies came). */
export interface SecondOfLoad {
  readonly s: number;
  readonly sent: number;
  readonly skipped: number;
  readonly ok: number;
  readonly refused: number;
  readonly errors: number;
  readonly ok_p50_ms: number | null;
  readonly ok_p99_ms: number | null;
  readonly ok_max_ms: number | null;
}

export interface OpenLoopResult {
  readonly rate_per_s: number;
  /** The window's real length: from the first due request to the last. */
  readonly window_s: number;
  /** Requests that fell due in the window: sent + skipped. */
  readonly due: number;
  readonly sent: number;
  readonly skipped_at_cap: number;
  readonly ok: number;
  readonly refused: number;
  readonly deadline_exceeded: number;
  /** Errors other than RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED. */
  readonly other_errors: number;
  /** Every failure by gRPC code name, RESOURCE_EXHAUSTED and DEADLINE_EXCEEDED included. */
  readonly error_codes: Record<string, number>;
  /** How long each kind of failure took to come back, by gRPC code name. */
  readonly error_lat_ms: Record<string, LatencyStats>;
  /** The most frequent failure messages (numbers masked), for what "other" was. */
  readonly error_kinds: Record<string, number>;
  /** The first failure message of each gRPC code, as it came (numbers not masked). */
  readonly error_examples: Record<string, string>;
  /** Replies that arrived inside the window, per second of it. */
  readonly ok_per_s: number;
  readonly refused_per_s: number;
  /** From the call until its reply; of every request due in the window, whenever it was answered. */
  readonly ok_lat_ms: LatencyStats;
  readonly refused_lat_ms: LatencyStats;
  /** How late the generator sent requests compared with their due time: large values mean it could not keep up. */
  readonly send_lag_ms: LatencyStats;
  /** The generator's event-loop delay during the window: what its own saturation adds to every measured latency. */
  readonly loadgen_loop_delay_ms: { readonly p50: number; readonly p99: number; readonly max: number };
  readonly peak_in_flight: number;
  /** From the window's end until the last reply (or deadline) of it. */
  readonly drain_ms: number;
  readonly seconds: readonly SecondOfLoad[];
}

interface Bucket {
  sent: number;
  skipped: number;
  ok: number;
  refused: number;
  errors: number;
  okLatencies: number[];
}

const ERROR_KINDS_KEPT = 5;

/** Sends Puts to `member` (then to whoever leads, if it steps down) at o.ratePerS for o.durationS seconds; resolves once every one of them has an answer. */
export async function runOpenLoop(client: BenchClient, member: Member, o: OpenLoopOptions): Promise<OpenLoopResult> {
  const value = Buffer.alloc(o.valueSize, 'x');
  const keys = Array.from({ length: o.keys }, (_, i) => keyOf(i));
  const total = Math.max(1, Math.round(o.ratePerS * o.durationS));
  const intervalMs = 1000 / o.ratePerS;
  const buckets: Bucket[] = Array.from({ length: Math.ceil(o.durationS) }, () => ({
    sent: 0,
    skipped: 0,
    ok: 0,
    refused: 0,
    errors: 0,
    okLatencies: [],
  }));
  const sendLag = new Float64Array(total);
  const okLatencies: number[] = [];
  const refusedLatencies: number[] = [];
  const errorLatencies: Record<string, number[]> = {};
  const errorKinds: Record<string, number> = {};
  const errorExamples: Record<string, string> = {};
  let due = 0;
  let sent = 0;
  let skipped = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  let okInWindow = 0;
  let refusedInWindow = 0;
  let deadlineExceeded = 0;
  let otherErrors = 0;
  let windowEnd = Infinity;
  let lastLeader = member;
  client.leader = member;

  let drained: () => void = () => {};
  const allAnswered = new Promise<void>((resolve) => (drained = resolve));
  const settle = (bucket: Bucket, t0: number, t1: number, error?: unknown): void => {
    inFlight--;
    const inWindow = t1 <= windowEnd;
    const code = error === undefined ? grpcStatus.OK : (error as Partial<ServiceError> | null)?.code;
    if (code === grpcStatus.OK) {
      bucket.ok++;
      bucket.okLatencies.push(t1 - t0);
      okLatencies.push(t1 - t0);
      if (inWindow) okInWindow++;
    } else if (code === grpcStatus.RESOURCE_EXHAUSTED) {
      bucket.refused++;
      refusedLatencies.push(t1 - t0);
      if (inWindow) refusedInWindow++;
    } else {
      bucket.errors++;
      if (code === grpcStatus.DEADLINE_EXCEEDED) deadlineExceeded++;
      else otherErrors++;
      const kind = errorKind(error);
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      // A leader that stepped down answers UNAVAILABLE: find the new one, as any client would, while sending on.
      if (code === grpcStatus.UNAVAILABLE && client.leader !== null) {
        client.leader = null;
        void client.findLeader(() => due === total);
      }
    }
    if (code !== grpcStatus.OK) {
      const name = typeof code === 'number' ? (grpcStatus[code] ?? String(code)) : 'NO_STATUS';
      (errorLatencies[name] ??= []).push(t1 - t0);
      errorExamples[name] ??= (error as Partial<ServiceError> | null)?.details || String(error);
    }
    if (inFlight === 0 && due === total) drained();
  };

  const send = (dueAt: number): void => {
    const bucket = buckets[Math.min(buckets.length - 1, Math.floor((dueAt - start) / 1000))] as Bucket;
    if (inFlight >= o.maxInFlight) {
      skipped++;
      bucket.skipped++;
      return;
    }
    const t0 = now();
    sendLag[sent++] = t0 - dueAt;
    bucket.sent++;
    inFlight++;
    if (inFlight > peakInFlight) peakInFlight = inFlight;
    client.put(client.leader ?? lastLeader, keys[Math.floor(Math.random() * keys.length)] as Buffer, value).then(
      () => settle(bucket, t0, now()),
      (error: unknown) => settle(bucket, t0, now(), error ?? new Error('rejected without a reason')),
    );
    if (client.leader !== null) lastLeader = client.leader;
  };

  /** Sends whatever fell due since the last tick, every 1 ms, until the window's last request is due. */
  const sendForTheWindow = (): Promise<void> =>
    new Promise<void>((windowDone) => {
      const tick = (): void => {
        const dueNow = Math.min(total, Math.floor((now() - start) / intervalMs) + 1);
        while (due < dueNow) send(start + due++ * intervalMs);
        if (due < total) {
          setTimeout(tick, 1);
          return;
        }
        windowEnd = now();
        loopDelay.disable();
        o.onWindowEnd?.();
        windowDone();
      };
      tick();
    });

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  // grpc-js captures and formats a stack trace for every call that fails: at
  // thousands of refusals a second that is a tenth of this generator's CPU,
  // the scarce resource of an open loop. Failures here are data, not bugs to
  // trace, so no frames are kept while the load runs.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const start = now();
  try {
    loopDelay.enable();
    // When the event loop was held up, the requests it owes go out at once:
    // the arrival rate is kept, not stretched, and the send lag says by how much they were late.
    await sendForTheWindow();
    if (inFlight > 0) await allAnswered;
  } finally {
    loopDelay.disable();
    Error.stackTraceLimit = stackTraceLimit;
  }
  const drainMs = now() - windowEnd;
  const windowS = (windowEnd - start) / 1000;

  const topKinds = Object.entries(errorKinds)
    .sort((x, y) => y[1] - x[1])
    .slice(0, ERROR_KINDS_KEPT);
  return {
    rate_per_s: o.ratePerS,
    window_s: round2(windowS),
    due,
    sent,
    skipped_at_cap: skipped,
    ok: okLatencies.length,
    refused: refusedLatencies.length,
    deadline_exceeded: deadlineExceeded,
    other_errors: otherErrors,
    error_codes: Object.fromEntries(Object.entries(errorLatencies).map(([code, ls]) => [code, ls.length])),
    error_lat_ms: Object.fromEntries(Object.entries(errorLatencies).map(([code, ls]) => [code, latencyStats(ls)])),
    error_kinds: Object.fromEntries(topKinds),
    error_examples: errorExamples,
    ok_per_s: Math.round(okInWindow / windowS),
    refused_per_s: Math.round(refusedInWindow / windowS),
    ok_lat_ms: latencyStats(okLatencies),
    refused_lat_ms: latencyStats(refusedLatencies),
    send_lag_ms: latencyStats(sendLag.subarray(0, sent)),
    loadgen_loop_delay_ms: {
      p50: nsToMs(loopDelay.percentile(50)),
      p99: nsToMs(loopDelay.percentile(99)),
      max: nsToMs(loopDelay.max),
    },
    peak_in_flight: peakInFlight,
    drain_ms: Math.round(drainMs),
    seconds: buckets.map((b, s) => {
      const l = latencyStats(b.okLatencies);
      return {
        s,
        sent: b.sent,
        skipped: b.skipped,
        ok: b.ok,
        refused: b.refused,
        errors: b.errors,
        ok_p50_ms: l.p50,
        ok_p99_ms: l.p99,
        ok_max_ms: l.max,
      };
    }),
  };
}

const round2 = (x: number): number => Math.round(x * 100) / 100;
const nsToMs = (ns: number): number => Math.round(ns / 1e4) / 100;
