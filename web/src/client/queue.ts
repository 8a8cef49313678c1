// A small async queue: producers push, one consumer awaits next(). Bounded: past `capacity` the oldest item is
// dropped (and handed to `onDrop`), so a consumer that falls behind never builds a hidden backlog.

export class Queue<T> {
  private items: T[] = [];
  private waiter: ((v: T | undefined) => void) | undefined;
  private roomWaiters: (() => void)[] = [];
  closed = false;

  constructor(
    private readonly capacity: number,
    private readonly onDrop: (item: T) => void = () => {},
  ) {}

  get length(): number {
    return this.items.length;
  }

  push(item: T): void {
    if (this.closed) {
      this.onDrop(item);
      return;
    }
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w(item);
      return;
    }
    this.items.push(item);
    if (this.items.length > this.capacity) this.onDrop(this.items.shift() as T);
  }

  /** The next item; undefined once the queue is closed and drained. */
  next(): Promise<T | undefined> {
    if (this.items.length > 0) {
      const item = this.items.shift();
      this.wakeProducers();
      return Promise.resolve(item);
    }
    if (this.closed) return Promise.resolve(undefined);
    return new Promise((r) => {
      this.waiter = r;
    });
  }

  /** Takes every queued item at once (to skip ahead). */
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }

  close(): void {
    this.closed = true;
    const w = this.waiter;
    this.waiter = undefined;
    w?.(undefined);
    this.wakeProducers();
  }

  /**
   * For a producer that can wait (one reading a stream, whose flow control then holds the rest at the sender):
   * resolves once fewer than `limit` items are queued, or the queue is closed.
   */
  async room(limit: number): Promise<void> {
    while (this.items.length >= limit && !this.closed)
      await new Promise<void>((r) => this.roomWaiters.push(r));
  }

  private wakeProducers(): void {
    for (const w of this.roomWaiters.splice(0)) w();
  }
}
