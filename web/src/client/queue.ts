// A small async queue: producers push, one consumer awaits next(). Bounded: past `capacity` the oldest item is
// dropped (and handed to `onDrop`), so a consumer that falls behind never builds a hidden backlog.

export class Queue<T> {
  private items: T[] = [];
  private waiter: ((v: T | undefined) => void) | undefined;
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
    if (this.items.length > 0) return Promise.resolve(this.items.shift());
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
  }
}
