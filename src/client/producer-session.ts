/**
 * The client's side of a producer session (exactly-once writes; see
 * RegisterProducer and ProducerStamp in client.proto): the session the
 * client writes under, each write's sequence number, and acknowledged_below,
 * the lowest sequence number whose answer the client still awaits. Pure
 * bookkeeping: registering a session is a function the caller passes in.
 *
 * A write keeps its number for the whole call, retries included, so that
 * the cluster can tell a retry from a new write. Its number holds
 * acknowledged_below back until the call is over, however it ends: once a
 * later write carries a higher acknowledged_below, the cluster forgets the
 * write's outcome and refuses any copy of it still on its way, so a write
 * given up as indeterminate has either been applied by then or never will
 * be.
 */

/** A stamp as sent with a write (numbers; the wire takes them as uint64). */
export interface ProducerStampFields {
  readonly producerId: number;
  readonly sequence: number;
  readonly acknowledgedBelow: number;
}

/** Registers a new session with the cluster and resolves to its id. */
export type RegisterProducer = () => Promise<number>;

/**
 * Numbers a session may have handed out from its oldest open write on. The
 * cluster keeps at most 1,000 unacknowledged outcomes per session
 * (MAX_UNACKNOWLEDGED_WRITES) and refuses writes past that; every outcome
 * it keeps at or above a stamp's acknowledged_below is one of these numbers,
 * so staying within the span means never being refused for it. A write
 * that would go past it waits until the oldest open one finishes (one slow
 * write holds up the others for at most its call's deadline).
 */
export const MAX_SEQUENCE_SPAN = 1_000;

/** One registered session: its id and the numbers handed out under it. */
class Session {
  private nextSequence = 1;
  /** The lowest number handed out whose write has not finished; nextSequence when every one has. */
  private lowestOpen = 1;
  private readonly open = new Set<number>();
  /** Writes waiting for room in the span, woken in order as the oldest open write finishes. */
  private readonly waiting: (() => void)[] = [];

  constructor(readonly id: number) {}

  get acknowledgedBelow(): number {
    return this.lowestOpen;
  }

  get openWrites(): number {
    return this.open.size;
  }

  async number(): Promise<number> {
    while (this.nextSequence - this.lowestOpen >= MAX_SEQUENCE_SPAN) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    const sequence = this.nextSequence++;
    this.open.add(sequence);
    return sequence;
  }

  finish(sequence: number): void {
    this.open.delete(sequence);
    while (this.lowestOpen < this.nextSequence && !this.open.has(this.lowestOpen)) this.lowestOpen++;
    let room = MAX_SEQUENCE_SPAN - (this.nextSequence - this.lowestOpen);
    while (room-- > 0 && this.waiting.length > 0) this.waiting.shift()?.();
  }
}

/** One write of a session, from its numbering until its call is over. */
export class ProducerWrite {
  private finished = false;

  constructor(
    private readonly session: Session,
    readonly sequence: number,
  ) {}

  get producerId(): number {
    return this.session.id;
  }

  /** The stamp to send now: acknowledged_below as the session stands (never above this write's number, which is still open). */
  stamp(): ProducerStampFields {
    if (this.finished) throw new Error(`producer ${this.session.id}: write ${this.sequence} is finished; a finished write is not sent again`);
    return { producerId: this.session.id, sequence: this.sequence, acknowledgedBelow: this.session.acknowledgedBelow };
  }

  /** The write's call is over (answered, refused or given up): it no longer holds acknowledged_below back. Calling it again does nothing. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.session.finish(this.sequence);
  }
}

export class ProducerSession {
  private current: Session | null = null;
  private registering: Promise<Session> | null = null;
  private registrations = 0;

  /** The id of the session new writes are numbered under; null before the first registration, or once the cluster forgot it. */
  get producerId(): number | null {
    return this.current?.id ?? null;
  }

  /** What acknowledged_below a write numbered now would carry; null with no session. */
  get acknowledgedBelow(): number | null {
    return this.current?.acknowledgedBelow ?? null;
  }

  /** Writes of the current session whose calls are not over. */
  get openWrites(): number {
    return this.current?.openWrites ?? 0;
  }

  /** Sessions registered so far (successfully). */
  get registered(): number {
    return this.registrations;
  }

  /**
   * Numbers a new write, registering a session first when there is none.
   * Writes that start while a registration is under way wait for that one
   * (the first writer's `register` is called, the others' are not); when it
   * fails, every one of them fails with its error and the next write tries
   * again.
   */
  async begin(register: RegisterProducer): Promise<ProducerWrite> {
    const session = this.current ?? (await this.registration(register));
    return new ProducerWrite(session, await session.number());
  }

  /**
   * The cluster does not know `producerId` (it forgot the session): writes
   * that start from now on register a new one. Writes numbered under the
   * old session keep their stamps; whether one may be sent again under a
   * new session is for its caller to decide (only if it was never sent
   * before). An id other than the current session's changes nothing: a
   * newer session already replaced it.
   */
  forget(producerId: number): void {
    if (this.current?.id === producerId) this.current = null;
  }

  private registration(register: RegisterProducer): Promise<Session> {
    if (this.registering !== null) return this.registering;
    const attempt = register().then((id) => {
      if (!Number.isSafeInteger(id) || id < 1) throw new Error(`RegisterProducer answered producer id ${String(id)}; ids are positive integers`);
      const session = new Session(id);
      this.current = session;
      this.registrations++;
      return session;
    });
    this.registering = attempt;
    const done = (): void => {
      if (this.registering === attempt) this.registering = null;
    };
    attempt.then(done, done);
    return attempt;
  }
}
