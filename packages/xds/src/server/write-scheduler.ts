/**
 * Bounds the response bytes a server has in flight across all its streams.
 *
 * Why: a push of a full state to thousands of streams would otherwise start one write per stream
 * at once. grpc-js copies every message into a frame of its own when it starts writing it, so
 * 5,000 streams × a 1 MB CDS response is 5 GB of fresh buffers alive together: the copies page-fault,
 * the process balloons by gigabytes and keeps them, and GC runs hot. With a budget, a few dozen
 * writes are in flight, their buffers are reused by the allocator, and the socket stays just as
 * busy. Each stream's responses still go out in order (ADS order included).
 *
 * A write counts against the budget until the transport says it is done (handed to the socket),
 * or until it has been in flight for `stallMs`: a client that stops reading (flow control) then
 * no longer holds up the others; its one message stays with it.
 */
export class WriteScheduler {
  private inFlight = 0;
  private readonly waiting: StreamWriter[] = [];
  private head = 0;
  /** Writes in start order (so oldest first) that may still be counted; done ones are skipped. */
  private active: InFlightWrite[] = [];
  private activeHead = 0;
  private activeCount = 0;
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

  /** @internal A writer has something to send and nothing in flight. */
  ready(w: StreamWriter): void {
    if (this.waitingStreams === 0 && this.hasRoom()) this.start(w);
    else {
      w.queued = true;
      this.waiting.push(w);
    }
  }

  /** @internal A writer closed: its in-flight write (if any) never completes. */
  closed(w: StreamWriter): void {
    if (w.writing) this.finish(w, w.writing);
  }

  private hasRoom(): boolean {
    return this.inFlight < this.maxBytes;
  }

  private start(w: StreamWriter): void {
    const bytes = w.take();
    const write: InFlightWrite = { bytes: bytes.length, counted: true, done: false, startedAt: this.now() };
    w.writing = write;
    this.inFlight += write.bytes;
    this.active.push(write);
    this.activeCount++;
    if (!this.ticker) {
      this.ticker = setInterval(() => this.releaseStalled(), Math.max(10, this.stallMs / 2));
      this.ticker.unref();
    }
    w.transport.write(bytes, () => this.finish(w, write));
  }

  private finish(w: StreamWriter, write: InFlightWrite): void {
    if (w.writing !== write) return;
    w.writing = undefined;
    this.release(write);
    if (w.hasMore()) {
      if (this.hasRoom() && this.waitingStreams === 0) this.start(w);
      else {
        w.queued = true;
        this.waiting.push(w);
      }
    }
    this.pump();
  }

  private release(write: InFlightWrite): void {
    write.done = true;
    this.activeCount--;
    if (write.counted) {
      write.counted = false;
      this.inFlight -= write.bytes;
    }
    if (this.activeCount === 0) {
      this.active = [];
      this.activeHead = 0;
      if (this.ticker) {
        clearInterval(this.ticker);
        this.ticker = undefined;
      }
    }
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
    // Oldest first: stop at the first write younger than the limit.
    while (this.activeHead < this.active.length) {
      const write = this.active[this.activeHead] as InFlightWrite;
      if (!write.done && write.startedAt > limit) break;
      this.activeHead++;
      if (!write.done && write.counted) {
        write.counted = false;
        this.inFlight -= write.bytes;
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

interface InFlightWrite {
  readonly bytes: number;
  counted: boolean;
  done: boolean;
  readonly startedAt: number;
}

/** One stream's ordered outbox. */
export class StreamWriter {
  writing: InFlightWrite | undefined;
  queued = false;
  isClosed = false;
  // Allocated on first use and dropped when empty: idle streams hold no array.
  private outbox: Buffer[] | undefined;

  constructor(
    private readonly scheduler: WriteScheduler,
    readonly transport: { write(bytes: Buffer, done: (error?: Error | null) => void): void },
  ) {}

  /** Queues a response; it is written after every earlier one of this stream. */
  send(bytes: Buffer): void {
    if (this.isClosed) return;
    if (this.outbox) this.outbox.push(bytes);
    else this.outbox = [bytes];
    if (!this.writing && !this.queued) this.scheduler.ready(this);
  }

  /** Drops what was not written yet and gives back the budget. */
  close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.outbox = undefined;
    this.scheduler.closed(this);
  }

  /** Responses queued but not yet handed to the transport. */
  get pending(): number {
    return this.outbox?.length ?? 0;
  }

  /** @internal */
  hasMore(): boolean {
    return !this.isClosed && this.outbox !== undefined && this.outbox.length > 0;
  }

  /** @internal */
  take(): Buffer {
    const outbox = this.outbox as Buffer[];
    const bytes = outbox.shift() as Buffer;
    if (outbox.length === 0) this.outbox = undefined;
    return bytes;
  }
}
