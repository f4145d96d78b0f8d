import type { ClientEvent, HistoryEvent, NemesisEvent, OperationF, OperationType } from './history.js';

/**
 * Collects the history in real-time order. Times are nanoseconds since the
 * run started, from the monotonic clock; events are appended as they happen,
 * so the array is already in order.
 */
export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];
  private readonly origin = process.hrtime.bigint();
  private nextFault = 1;

  now(): number {
    return Number(process.hrtime.bigint() - this.origin);
  }

  invoke(process: number, f: OperationF, key: string | null, value: unknown, node: string): ClientEvent {
    return this.push({ process, type: 'invoke', f, key, value, time: this.now(), node });
  }

  complete(
    invocation: ClientEvent,
    type: Exclude<OperationType, 'invoke'>,
    value: unknown,
    extra: { index?: number; error?: string; node?: string; duplicate?: boolean } = {},
  ): ClientEvent {
    return this.push({ ...invocation, type, value, time: this.now(), ...extra });
  }

  /** Records the start of a fault and returns the id its stop must carry. */
  faultStarted(f: string, kind: string, description: string, nodes: readonly string[]): number {
    const fault = this.nextFault++;
    this.nemesis(f, { fault, kind, description, nodes });
    return fault;
  }

  faultStopped(fault: number, f: string, kind: string, description: string, nodes: readonly string[]): void {
    this.nemesis(f, { fault, kind, description, nodes });
  }

  clientEvents(): ClientEvent[] {
    return this.events.filter((event): event is ClientEvent => event.process !== 'nemesis');
  }

  private nemesis(f: string, value: NemesisEvent['value']): void {
    this.events.push({ process: 'nemesis', type: 'info', f, value, time: this.now() });
  }

  private push(event: ClientEvent): ClientEvent {
    this.events.push(event);
    return event;
  }
}
