/**
 * Bounds the response bytes a server has in flight across all its streams.
 *
 * Why: a push of a full state to thousands of streams would otherwise start one write per stream
 * at once. grpc-js copies every message into a frame of its own when it starts writing it, so
 * 5,000 streams × a 1 MB CDS response is 5 GB of fresh buffers alive together: the copies page-fault,
 * the process balloons by gigabytes and keeps them, and GC runs hot. With a budget, a bounded
 * amount is in flight, its buffers are reused by the allocator, and the socket stays just as
 * busy. Each stream's responses still go out in order (ADS order included).
 *
 * A response sent with its type and nonce counts against the budget until the client answers it
 * (an ACK or NACK echoing the nonce, or a later one of the same type), not merely until the
 * transport has handed it to the kernel: otherwise thousands of sockets can each hold a
 * megabyte in kernel buffers the budget no longer sees (1.5 GB measured on loopback at 5,000
 * connections, at the kernel's `tcp_mem` pressure threshold). A write without a nonce counts until the transport
 * is done with it. Either way a write stops counting after `stallMs`: a client that stops reading
 * (flow control) or never answers then no longer holds up the others; its messages stay with it.
 */
export class WriteScheduler {
  private inFlight = 0;
  private readonly waiting: StreamWriter[] = [];
  private head = 0;
  /** Counted writes in start order (so oldest first); released ones are skipped. */
  private active: InFlightWrite[] = [];
  private activeHead = 0;
  private counted = 0;
  private ticker: NodeJS.Timeout | undefined;
  private stalled = 0;

  constructor(
    /** Bytes in flight across all streams before further writes wait (one write always proceeds). */
    readonly maxBytes: number,
    /** After this long a write no longer counts against the budget. */
    readonly stallMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** A writer for one stream's transport. */
  writer(transport: { write(bytes: Buffer, done: (error?: Error | null) => void): void }): StreamWriter {
    return new StreamWriter(this, transport);
  }

  /** Bytes currently counted against the budget (for tests and metrics). */
  get bytesInFlight(): number {
    return this.inFlight;
  }

  /** Writes that stopped counting against the budget because they stalled (for metrics). */
  get stalledWrites(): number {
    return this.stalled;
  }

  /** Streams waiting for a turn (for tests and metrics). */
  get waitingStreams(): number {
    return this.waiting.length - this.head;
  }

  /** @internal A writer has something to send and nothing being written. */
  ready(w: StreamWriter): void {
    if (this.waitingStreams === 0 && this.hasRoom()) this.start(w);
    else {
      w.queued = true;
      this.waiting.push(w);
    }
  }

  /** @internal A writer closed: its writes never complete and will not be answered. */
  closed(w: StreamWriter, unanswered: readonly InFlightWrite[] | undefined): void {
    let freed = false;
    if (w.writing) {
      freed = this.uncount(w.writing) || freed;
      w.writing = undefined;
    }
    if (unanswered) for (const write of unanswered) freed = this.uncount(write) || freed;
    if (freed) this.pump();
  }

  /** @internal The client answered this write: it no longer counts. */
  answered(write: InFlightWrite): void {
    if (this.uncount(write)) this.pump();
  }

  private hasRoom(): boolean {
    return this.inFlight < this.maxBytes;
  }

  private start(w: StreamWriter): void {
    const write = w.take();
    const payload = write.payload as Buffer;
    write.payload = undefined;
    write.counted = true;
    write.startedAt = this.now();
    w.writing = write;
    if (write.nonce !== undefined) w.awaitAnswer(write);
    this.inFlight += write.bytes;
    this.active.push(write);
    this.counted++;
    if (!this.ticker) {
      this.ticker = setInterval(() => this.releaseStalled(), Math.max(10, this.stallMs / 2));
      this.ticker.unref();
    }
    w.transport.write(payload, () => this.finish(w, write));
  }

  /** The transport is done with a write: the stream's next one may start. */
  private finish(w: StreamWriter, write: InFlightWrite): void {
    if (w.writing !== write) return;
    w.writing = undefined;
    // Without a nonce there is no answer to wait for; with one, the answer releases it.
    if (write.nonce === undefined) this.uncount(write);
    if (w.hasMore()) {
      if (this.hasRoom() && this.waitingStreams === 0) this.start(w);
      else {
        w.queued = true;
        this.waiting.push(w);
      }
    }
    this.pump();
  }

  /** Stops counting a write; returns whether it was counted. */
  private uncount(write: InFlightWrite): boolean {
    if (!write.counted) return false;
    write.counted = false;
    this.inFlight -= write.bytes;
    this.counted--;
    if (this.counted === 0) {
      this.active = [];
      this.activeHead = 0;
      if (this.ticker) {
        clearInterval(this.ticker);
        this.ticker = undefined;
      }
    }
    return true;
  }

  private pump(): void {
    while (this.waitingStreams > 0 && this.hasRoom()) {
      const w = this.waiting[this.head++] as StreamWriter;
      w.queued = false;
      if (!w.isClosed && w.hasMore() && !w.writing) this.start(w);
    }
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }

  private releaseStalled(): void {
    const limit = this.now() - this.stallMs;
    let freed = false;
    // Oldest first: stop at the first counted write younger than the limit.
    while (this.activeHead < this.active.length) {
      const write = this.active[this.activeHead] as InFlightWrite;
      if (write.counted && write.startedAt > limit) break;
      this.activeHead++;
      if (this.uncount(write)) {
        this.stalled++;
        freed = true;
      }
    }
    if (this.activeHead > 1024 && this.activeHead * 2 > this.active.length) {
      this.active = this.active.slice(this.activeHead);
      this.activeHead = 0;
    }
    if (freed) this.pump();
  }
}

/** @internal One response of a stream, from its queueing until it stops counting. */
export interface InFlightWrite {
  /** The framed bytes while queued; dropped once handed to the transport. */
  payload: Buffer | undefined;
  readonly bytes: number;
  readonly typeUrl: string | undefined;
  readonly nonce: string | undefined;
  /** Counts against the budget (from the start of its write). */
  counted: boolean;
  startedAt: number;
}

/** One stream's ordered outbox. */
export class StreamWriter {
  writing: InFlightWrite | undefined;
  queued = false;
  isClosed = false;
  // Allocated on first use and dropped when empty: idle streams hold no arrays.
  private outbox: InFlightWrite[] | undefined;
  /** Started writes with a nonce that the client has not answered yet, oldest first. */
  private unanswered: InFlightWrite[] | undefined;

  constructor(
    private readonly scheduler: WriteScheduler,
    readonly transport: { write(bytes: Buffer, done: (error?: Error | null) => void): void },
  ) {}

  /**
   * Queues a response; it is written after every earlier one of this stream. With `typeUrl` and
   * `nonce` it counts against the budget until {@link answered} reports the client's reply.
   */
  send(bytes: Buffer, typeUrl?: string, nonce?: string): void {
    if (this.isClosed) return;
    const out: InFlightWrite = {
      payload: bytes,
      bytes: bytes.length,
      typeUrl,
      nonce,
      counted: false,
      startedAt: 0,
    };
    if (this.outbox) this.outbox.push(out);
    else this.outbox = [out];
    if (!this.writing && !this.queued) this.scheduler.ready(this);
  }

  /**
   * The client answered (ACKed or NACKed) the response of `typeUrl` with `nonce`: it and every
   * earlier unanswered response of that type (a client may answer only the newest) stop counting.
   * An unknown nonce changes nothing.
   */
  answered(typeUrl: string, nonce: string): void {
    const list = this.unanswered;
    if (list === undefined) return;
    let at = -1;
    for (let i = 0; i < list.length; i++) {
      const w = list[i] as InFlightWrite;
      if (w.typeUrl === typeUrl && w.nonce === nonce) {
        at = i;
        break;
      }
    }
    if (at < 0) return;
    if (list.length === 1) this.unanswered = undefined;
    else {
      const keep = list.filter((w, i) => w.counted && (i > at || w.typeUrl !== typeUrl));
      this.unanswered = keep.length > 0 ? keep : undefined;
    }
    for (let i = 0; i <= at; i++) {
      const w = list[i] as InFlightWrite;
      if (w.typeUrl === typeUrl) this.scheduler.answered(w);
    }
  }

  /** Drops what was not written yet and gives back the budget. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.outbox = undefined;
    const unanswered = this.unanswered;
    this.unanswered = undefined;
    this.scheduler.closed(this, unanswered);
  }

  /** Responses queued but not yet handed to the transport. */
  get pending(): number {
    return this.outbox?.length ?? 0;
  }

  /** Responses written (or being written) that the client has not answered yet. */
  get awaitingAnswer(): number {
    return this.unanswered?.length ?? 0;
  }

  /** @internal */
  hasMore(): boolean {
    return !this.isClosed && this.outbox !== undefined && this.outbox.length > 0;
  }

  /** @internal */
  take(): InFlightWrite {
    const outbox = this.outbox as InFlightWrite[];
    const out = outbox.shift() as InFlightWrite;
    if (outbox.length === 0) this.outbox = undefined;
    return out;
  }

  /** @internal A write with a nonce started: remember it until the client answers. */
  awaitAnswer(write: InFlightWrite): void {
    if (this.unanswered) {
      // Writes that stopped counting (stalled) need no answer any more: drop them as we go, so a
      // client that never answers does not grow this list.
      if (!(this.unanswered[0] as InFlightWrite).counted) {
        this.unanswered = this.unanswered.filter((w) => w.counted);
      }
      this.unanswered.push(write);
    } else this.unanswered = [write];
  }
}
